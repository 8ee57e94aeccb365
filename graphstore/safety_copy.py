"""The safety copy that makes LadybugDB's bulk writes survive the engine's own crash.

LadybugDB 0.22 writes ``COPY FROM`` into no write-ahead log: the copied rows reach the disk only
in the checkpoint that runs after COMMIT. A transaction that mixes COPY with logged writes (a
replace: DETACH DELETE the old copy, COPY the new one) killed or out of disk space between
COMMIT's WAL record and the end of that checkpoint comes back from recovery with the deletes and
without the COPY: neither copy of the model (``tools/ladybug-repro`` holds the reproduction).

So before such a transaction the writer (holding the folder's :class:`~graphstore.writer_lock.
WriterLock`, with the store checkpointed: no WAL) copies ``graph.lbug`` to
:data:`SAFETY_COPY` (fsync, rename, fsync the folder) and writes the :data:`MARKER` (what, which
model, who, when). After COMMIT and a clean CHECKPOINT it removes the marker — the commit point
of the whole write — then the copy. Any open of the folder, before the engine touches it, undoes
a write that left its marker (:func:`restore`): the engine's WAL, frozen WAL and shadow files are
deleted and the copy is renamed over ``graph.lbug``. Every restore is logged in
:data:`RECOVERIES` for ``explgraph store info``. This module never opens the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from explgraph.core.diskspace import MB, free_bytes, is_no_space, no_space_message
from explgraph.core.errors import StoreError
from graphstore.address import DATABASE_FILE

SAFETY_COPY = f"{DATABASE_FILE}.explgraph-safety-copy"
MARKER = "explgraph-write-in-progress.json"
RECOVERIES = "explgraph-recoveries.json"
#: files the engine writes while a transaction commits and checkpoints
ENGINE_WRITE_FILES = tuple(DATABASE_FILE + end for end in (".wal", ".wal.checkpoint", ".shadow"))
#: every file this module may leave in a store folder
FILES = tuple(f"{name}{end}" for name in (SAFETY_COPY, MARKER, RECOVERIES) for end in ("", ".tmp"))
#: restores kept in the log
_KEPT = 10


def write_headroom(database_bytes: int) -> int:
    """Free space a write needs beyond any safety copy: the WAL of its deletes and updates (a few
    bytes per row deleted, far below the database's size) with a margin; the checkpoint's new
    pages need not fit, because a checkpoint that runs out of space is undone from the copy."""
    return 16 * MB + database_bytes // 8


def check_room(folder: Path, needed: int, what: str) -> None:
    """Refuse with the one disk-full line when ``folder`` has less than ``needed`` bytes free."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise StoreError(no_space_message(folder, needed=needed, what=what))


def pending(folder: Path) -> bool:
    """Whether a write left its marker, or a safety copy or temporary file lies in ``folder``."""
    return any((folder / name).exists() for name in (MARKER, SAFETY_COPY, f"{SAFETY_COPY}.tmp"))


def take(folder: Path, operation: str, model_id: str | None) -> None:
    """Copy the (checkpointed) database to :data:`SAFETY_COPY`, then write the marker.

    Raises:
        StoreError: no room for the copy and the write after it (nothing was changed).
    """
    database = folder / DATABASE_FILE
    size = database.stat().st_size
    check_room(folder, size + write_headroom(size), "the write with its safety copy of the store")
    tmp = folder / f"{SAFETY_COPY}.tmp"
    try:
        shutil.copyfile(database, tmp)
        _fsync_file(tmp)
        os.replace(tmp, folder / SAFETY_COPY)
        _fsync_dir(folder)
        marker = {
            "operation": operation,
            "model_id": model_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        _write_json(folder / MARKER, marker)
    except OSError as error:
        for name in (MARKER, SAFETY_COPY, f"{SAFETY_COPY}.tmp"):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        raise StoreError(
            no_space_message(folder, needed=size, what="the safety copy of the store")
            if is_no_space(error)
            else f"cannot write the safety copy of the store in {folder} ({error})"
        ) from None


def drop(folder: Path) -> None:
    """The write is durable: remove the marker (the commit point), then the copy."""
    _remove(folder / MARKER)
    _remove(folder / SAFETY_COPY)


def restore(folder: Path) -> str | None:
    """Undo the write that left its marker in ``folder`` (the caller holds the writer lock and
    the engine is not open); returns the one line that says so, or ``None`` when no write was
    interrupted (a copy without a marker is a leftover of a finished write: removed)."""
    marker = folder / MARKER
    if not marker.exists():
        for name in (SAFETY_COPY, f"{SAFETY_COPY}.tmp", f"{MARKER}.tmp"):
            _remove(folder / name)
        return None
    details = _read_json(marker)
    for name in ENGINE_WRITE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    _fsync_dir(folder)
    if (folder / SAFETY_COPY).exists():  # absent: a restore was killed after its rename
        os.replace(folder / SAFETY_COPY, folder / DATABASE_FILE)
        _fsync_dir(folder)
    line = _restored_line(details)
    _record(folder, line)
    _remove(marker)
    return line


def recoveries(folder: Path) -> list[str]:
    """The restores logged in ``folder``, oldest first."""
    entries = _read_json(folder / RECOVERIES).get("restored", [])
    return [str(entry) for entry in entries] if isinstance(entries, list) else []


def clear_recoveries(folder: Path) -> None:
    """Forget the logged restores (``explgraph store repair`` has reported them)."""
    _remove(folder / RECOVERIES)


def _restored_line(details: dict[str, Any]) -> str:
    what = str(details.get("operation") or "write")
    model = details.get("model_id")
    of = f" of model {model!r}" if model else ""
    who = f"process {details.get('pid', '?')} at {details.get('started', '?')}"
    return (
        f"the interrupted {what}{of} ({who}) was undone: the store was restored from its "
        "safety copy to its state before that write"
    )


def _record(folder: Path, line: str) -> None:
    stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {line}"
    entries = [*recoveries(folder), stamped][-_KEPT:]
    with contextlib.suppress(OSError):  # a full disk: the restore itself needs no space
        _write_json(folder / RECOVERIES, {"restored": entries})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "ENGINE_WRITE_FILES",
    "FILES",
    "MARKER",
    "RECOVERIES",
    "SAFETY_COPY",
    "check_room",
    "clear_recoveries",
    "drop",
    "pending",
    "recoveries",
    "restore",
    "take",
    "write_headroom",
]
