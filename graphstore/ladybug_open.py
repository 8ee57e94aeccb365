"""Opening an embedded store folder: checks, the undo of interrupted writes, engine recovery.

Before LadybugDB touches a folder, an interrupted bulk write is undone from its safety copy
(:mod:`graphstore.safety_copy`) unless its writer is still alive (it holds the folder's
:class:`~graphstore.writer_lock.WriterLock`). Then the engine opens it; three failures are
handled here rather than shown raw:

- *checkpoint recovery pending* (a writer was killed during a checkpoint): LadybugDB refuses
  read-only opens until a read-write open has replayed it, so a reader does that short open
  itself when no writer holds the folder;
- *a torn write-ahead log* (a writer killed while COMMIT wrote it: "Checksum verification
  failed, the WAL file is corrupted"): the torn tail is a transaction that never committed, so
  the store is opened once with ``throw_on_wal_replay_failure=False``, which replays up to it;
- *no space left*: one line with the free space.

Each thing done is reported as one line (the store's ``notices``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from explgraph.core.diskspace import MB, free_bytes, is_no_space, no_space_message
from explgraph.core.errors import QuerySyntaxError, ReadOnlyViolation, StoreError, StoreUnavailable
from graphstore import safety_copy
from graphstore.address import DATABASE_FILE, folder_state
from graphstore.writer_lock import WriterLock

log = logging.getLogger(__name__)

RECOVERY_PENDING = "checkpoint recovery is pending"
#: below this much free space a recovery that did not finish is blamed on the disk
_RECOVERY_ROOM = 16 * MB
TORN_LOG = "the wal file is corrupted"
_TORN_NOTICE = (
    "the store's write-ahead log ended in a torn record (a writer was killed while it "
    "committed): that uncommitted write was dropped and the store opened at its last committed "
    "state"
)


def translate_error(error: Exception, cypher: str = "") -> StoreError:
    """Map a LadybugDB ``RuntimeError`` to the explgraph error tree, keeping its first line."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    lowered = text.lower()
    if RECOVERY_PENDING in lowered:
        return StoreUnavailable(
            "the store is being recovered from an interrupted write by the process that holds "
            "it; run this again when that process has finished"
        )
    if "read-only" in lowered or "read only" in lowered:
        return ReadOnlyViolation(
            f"the query tries to change the store ({first}): pass --write to allow it"
        )
    if text.startswith(("Parser exception", "Binder exception")):
        return QuerySyntaxError(f"{first}; check the Cypher (LadybugDB dialect) and try again")
    if "could not set lock" in lowered:
        return StoreUnavailable(
            f"another process is writing this store ({first}); wait for it to finish or "
            "query the store read-only"
        )
    return StoreError(f"LadybugDB refused the operation: {first}")


def check_folder(folder: Path, *, read_only: bool, create: bool) -> None:
    """Refuse a file, a missing store that must exist, or another program's folder."""
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a store folder: name a folder with --store")
    state = folder_state(folder)
    if state != "store" and (read_only or not create):
        raise StoreError(
            f"no store at {folder}: write a model into it first (explgraph mine / demo) "
            "or point --store / EXPLGRAPH_STORE at an existing store"
        )
    if state == "foreign":
        raise StoreError(
            f"{folder} is not empty and holds no explgraph store: name a new or empty "
            "folder with --store"
        )


def lock_for_writing(folder: Path, lock: WriterLock) -> None:
    """Take the folder's writer lock, or refuse in one line that names the holder."""
    if not lock.acquire("writing"):
        raise StoreUnavailable(
            f"another process is writing this store ({folder}): {lock.describe_holder()}; "
            "wait for it to finish or query the store read-only"
        )


def undo_interrupted_write(folder: Path, lock: WriterLock) -> str | None:
    """Restore the safety copy of a write whose process is gone; the line that says so.

    ``lock`` is held already by a writer; a reader takes it for the restore, and leaves the
    folder alone when a live writer holds it (that write is not interrupted).
    """
    if not safety_copy.pending(folder):
        return None
    if lock.held:
        return _restored(safety_copy.restore(folder))
    if not lock.acquire("recovering"):
        return None
    try:
        return _restored(safety_copy.restore(folder))
    finally:
        lock.release()


def open_database(ladybug: Any, folder: Path, *, read_only: bool, lock: WriterLock) -> Any:
    """The engine's ``Database`` for ``folder``, with the failures of the module docstring
    handled; returns ``(database, notices)``."""
    path = str(folder / DATABASE_FILE)
    try:
        return ladybug.Database(path, read_only=read_only), []
    except RuntimeError as error:
        text = str(error).lower()
        if read_only and RECOVERY_PENDING in text:
            return _recover_then_open(ladybug, folder, lock)
        if TORN_LOG in text:
            return _open_dropping_torn_log(ladybug, folder, read_only=read_only, lock=lock)
        raise open_error(folder, error) from None


def open_error(folder: Path, error: Exception) -> StoreError:
    """One line for an engine error raised while opening or recovering ``folder``."""
    if is_no_space(error):
        return StoreError(no_space_message(folder, what="opening the store"))
    text = str(error).lower()
    if "could not set lock" in text:
        return StoreUnavailable(
            f"another process is writing the store {folder} (the engine could not lock its "
            "file); wait for it to finish or query the store read-only"
        )
    return translate_error(error)


def _recover_then_open(ladybug: Any, folder: Path, lock: WriterLock) -> Any:
    """Finish a pending checkpoint recovery with a short read-write open, then reopen read-only.

    When a writer holds the folder, it does the recovery itself: say so and let the user wait.
    """
    with _recovering(folder, lock):
        path = str(folder / DATABASE_FILE)
        try:
            ladybug.Database(path, read_only=False).close()
            notices: list[str] = []
        except RuntimeError as error:
            if TORN_LOG not in str(error).lower():
                raise open_error(folder, error) from None
            _lenient(ladybug, path).close()
            notices = [_TORN_NOTICE]
    return _reopen_read_only(ladybug, folder), notices


def _open_dropping_torn_log(
    ladybug: Any, folder: Path, *, read_only: bool, lock: WriterLock
) -> Any:
    """Open once leniently: the replay stops at the torn record, which never committed."""
    log.warning(_TORN_NOTICE)
    path = str(folder / DATABASE_FILE)
    if not read_only:  # the writer holds the lock already
        return _lenient(ladybug, path), [_TORN_NOTICE]
    with _recovering(folder, lock):
        _lenient(ladybug, path).close()
    return _reopen_read_only(ladybug, folder), [_TORN_NOTICE]


def _lenient(ladybug: Any, path: str) -> Any:
    try:
        return ladybug.Database(path, read_only=False, throw_on_wal_replay_failure=False)
    except RuntimeError as error:
        raise open_error(Path(path).parent, error) from None


class _recovering:
    """The writer lock held for a reader's short read-write recovery open."""

    def __init__(self, folder: Path, lock: WriterLock) -> None:
        self.folder, self.lock = folder, lock

    def __enter__(self) -> None:
        if not self.lock.acquire("recovering"):
            raise StoreUnavailable(
                f"{self.lock.describe_holder()} is writing the store {self.folder} and recovers "
                "it from an interrupted write itself; run this again when it has finished"
            )

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _reopen_read_only(ladybug: Any, folder: Path) -> Any:
    """Open read-only after a short read-write open (recovery, upgrade) has closed."""
    try:
        return ladybug.Database(str(folder / DATABASE_FILE), read_only=True)
    except RuntimeError as error:
        if RECOVERY_PENDING in str(error).lower():  # the recovery itself did not finish
            free = free_bytes(folder)
            if free is not None and free < _RECOVERY_ROOM:
                raise StoreError(
                    no_space_message(folder, what="recovering it from an interrupted write")
                ) from None
            raise StoreError(
                f"the store {folder} could not be recovered from an interrupted write: "
                "free disk space if it is full, then run `explgraph store repair`"
            ) from None
        raise open_error(folder, error) from None


def _restored(line: str | None) -> str | None:
    if line:
        log.warning(line)
    return line


__all__ = [
    "RECOVERY_PENDING",
    "TORN_LOG",
    "check_folder",
    "lock_for_writing",
    "open_database",
    "open_error",
    "translate_error",
    "undo_interrupted_write",
]
