"""What a store looks like from outside explgraph, to prove a statement changed nothing.

:func:`observe` reads a store without going through the code under test: an embedded store's
files byte by byte, a Bolt server through the raw driver (labels, relationship types, indexes,
constraints, node and relationship counts by label and type, the property keys in use, and a
digest of every node's and relationship's properties). :func:`canary` writes a file with a
random secret that no output may ever show, and :class:`FileWatch` sees any process open it
(inotify). :func:`bolt_statements` records every statement the Bolt driver runs in this process
with the access mode of its transaction.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.stores import env_settings

_BOLT_VIEWS = {
    "labels": "CALL db.labels() YIELD label RETURN collect(label) AS v",
    "types": "CALL db.relationshipTypes() YIELD relationshipType "
    "RETURN collect(relationshipType) AS v",
    "indexes": "SHOW INDEXES YIELD name, labelsOrTypes, properties "
    "RETURN collect([name, labelsOrTypes, properties]) AS v",
    "constraints": "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS v",
    "nodes": "MATCH (n) RETURN collect([labels(n), properties(n)]) AS v",
    "relationships": "MATCH ()-[r]->() RETURN collect([type(r), properties(r)]) AS v",
}


def folder_bytes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> SHA-256 of its bytes)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def bolt_view(uri: str) -> dict[str, Any]:
    """The server's schema and contents (credentials from the ``NEO4J_*`` variables), each view
    sorted and the contents digested."""
    import neo4j

    settings = env_settings()
    view: dict[str, Any] = {}
    with neo4j.GraphDatabase.driver(uri, auth=(settings.user, settings.password)) as driver:
        for name, statement in _BOLT_VIEWS.items():
            records, _, _ = driver.execute_query(statement, database_=settings.database)
            values = sorted(json.dumps(v, sort_keys=True, default=str) for v in records[0]["v"])
            if name in ("nodes", "relationships"):
                digest = hashlib.sha256("\n".join(values).encode()).hexdigest()
                view[name] = (len(values), digest)
            else:
                view[name] = values
    return view


def observe(spec: str) -> dict[str, Any]:
    """:func:`folder_bytes` of an embedded store, :func:`bolt_view` of a Bolt server."""
    return bolt_view(spec) if "://" in spec else folder_bytes(Path(spec))


def canary(folder: Path) -> tuple[Path, str]:
    """A CSV file in ``folder`` holding a random secret, and the secret."""
    secret = f"canary{secrets.token_hex(12)}"
    path = folder / "canary.csv"
    path.write_text(f"{secret}\n{secret}\n")
    return path, secret


class FileWatch:
    """Whether any process opened or read a file since the last look (Linux inotify).

    ``available`` is False where inotify is not (other systems): :meth:`touched` then says False.
    """

    _OPEN_OR_READ = 0x00000020 | 0x00000001  # IN_OPEN | IN_ACCESS
    _NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC

    def __init__(self, path: Path) -> None:
        self._fd = -1
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name, use_errno=True) if name else None
        if libc is None or not hasattr(libc, "inotify_init1"):
            return
        fd = libc.inotify_init1(self._NONBLOCK_CLOEXEC)
        if fd >= 0 and libc.inotify_add_watch(fd, str(path).encode(), self._OPEN_OR_READ) >= 0:
            self._fd = fd
        elif fd >= 0:
            os.close(fd)

    @property
    def available(self) -> bool:
        """Whether the file is watched."""
        return self._fd >= 0

    def touched(self) -> bool:
        """Whether the file was opened or read since the last call."""
        if self._fd < 0:
            return False
        events = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._fd, 4096):
                events += chunk
        return any(
            struct.unpack_from("iIII", events, offset)[1] & self._OPEN_OR_READ
            for offset in _event_offsets(events)
        )

    def close(self) -> None:
        """Stop watching."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _event_offsets(events: bytes) -> Iterator[int]:
    """Where each ``struct inotify_event`` (16 bytes and its name) starts in ``events``."""
    offset = 0
    while offset + 16 <= len(events):
        yield offset
        offset += 16 + struct.unpack_from("iIII", events, offset)[3]


@contextlib.contextmanager
def bolt_statements() -> Iterator[list[tuple[str, str]]]:
    """While the block runs: every statement the neo4j driver sends from this process, as
    ``(access mode, statement)``; the mode is the one the transaction was opened with (``READ``
    or ``WRITE``, what the server is told), or ``auto-commit`` for a statement outside one."""
    from neo4j._sync.work.session import Session
    from neo4j._sync.work.transaction import TransactionBase

    ran: list[tuple[str, str]] = []
    modes: dict[int, str] = {}  # id(transaction) -> its access mode
    open_transaction, run_in_transaction, run_alone = (
        Session._open_transaction,
        TransactionBase.run,
        Session.run,
    )

    def opening(self: Session, **kwargs: Any) -> None:
        open_transaction(self, **kwargs)
        modes[id(self._transaction)] = str(kwargs["access_mode"])

    def running(self: TransactionBase, query: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append((modes.get(id(self), "unknown"), str(query)))
        return run_in_transaction(self, query, *args, **kwargs)

    def auto_commit(self: Session, query: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(("auto-commit", str(getattr(query, "text", query))))
        return run_alone(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Session, "_open_transaction", opening)
        patch.setattr(TransactionBase, "run", running)
        patch.setattr(Session, "run", auto_commit)
        yield ran


__all__ = ["FileWatch", "bolt_statements", "bolt_view", "canary", "folder_bytes", "observe"]
