"""One writer per embedded store: an advisory file lock in the store folder, held for the life
of every read-write open, that says who holds it.

LadybugDB locks its database file too, but only while it is open, and it cannot say who holds
it. This lock is taken *before* the engine opens the folder and kept until it is closed, so the
open-time restore of :mod:`graphstore.safety_copy` can tell a live writer (lock held: leave its
files alone) from a dead one (the kernel released its lock: restore), and a second writer is
refused in one line that names the holder. The lock file holds ``{"pid", "host", "since",
"role"}`` of its holder; ``role`` ``"recovering"`` marks a short restore that others wait for.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: the engine's own lock remains
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "explgraph-writer.lock"
#: how long a writer waits for a reader that is restoring the folder (a rename and a few unlinks)
RECOVERY_WAIT_S = 30.0


class WriterLock:
    """The folder's writer lock. :meth:`acquire` never blocks longer than asked."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._handle: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._handle is not None

    def acquire(self, role: str, *, wait_s: float = 0.0) -> bool:
        """Take the lock for ``role`` (``"writing"``, ``"recovering"``); ``False`` when another
        process holds it after ``wait_s`` seconds (a holder that is recovering is always waited
        for, up to :data:`RECOVERY_WAIT_S`)."""
        if self._handle is not None:
            return True
        deadline = time.monotonic() + wait_s
        while True:
            if self._try(role):
                return True
            holder = self.holder()
            limit = deadline + (RECOVERY_WAIT_S if holder.get("role") == "recovering" else 0)
            if time.monotonic() >= limit:
                return False
            time.sleep(0.05)

    def _try(self, role: str) -> bool:
        # unbuffered: nothing is left to flush on close, which a full disk would fail
        handle = open(self.path, "ab+", buffering=0)  # noqa: SIM115 - kept open while held
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
        self._handle = handle
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        details = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "role": role}
        with contextlib.suppress(OSError):  # who holds it is a courtesy: a full disk may refuse
            handle.truncate(0)
            handle.write(json.dumps(details).encode())
        return True

    def release(self) -> None:
        """Let the lock go (closing the file releases it; a killed process releases it too,
        leaving its details, which :meth:`live_holder` then finds dead)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            with contextlib.suppress(OSError):
                handle.close()

    def live_holder(self) -> str | None:
        """Who holds the lock now, judged without taking it (a live process of this host named
        in the file; ``None`` when the file is empty or names a process that is gone)."""
        details = self.holder()
        if self._handle is not None or "pid" not in details:
            return None
        if details.get("host") == socket.gethostname():
            try:
                os.kill(int(details["pid"]), 0)
            except ProcessLookupError:
                return None
            except (PermissionError, ValueError, OverflowError):
                pass
        return self.describe_holder()

    def holder(self) -> dict[str, Any]:
        """What the holder wrote into the lock file (``{}`` when unreadable)."""
        try:
            details = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return details if isinstance(details, dict) else {}

    def describe_holder(self) -> str:
        """``process 123 on host h (writing since 2026-12-07 10:00:00)``, or what is known."""
        details = self.holder()
        if "pid" not in details:
            return "another process"
        where = f" on {details['host']}" if details.get("host") else ""
        return (
            f"process {details['pid']}{where} ({details.get('role', 'writing')} since "
            f"{details.get('since', '?')})"
        )


__all__ = ["LOCK_FILE", "RECOVERY_WAIT_S", "WriterLock"]
