"""One writer per model on a Bolt server: a lease node, taken before staging, renewed while held.

A Bolt server has no lock a client could hold for the minutes a replace takes, and two replacing
writers of one model used to share one staging copy (issue 22: one writer died, a reader saw a
``complete`` model without its layers). So a writer first takes the model's lease: a
``(:WriteLease {model_id})`` node (unique on ``model_id``) holding the writer's random token,
who it is and when the lease expires (server time, ``timestamp()``). It is taken when nobody
holds it, when its holder let it expire (a killed writer blocks others for at most
:data:`LEASE_SECONDS`) or when its holder is a process of this host that no longer exists; a
background thread renews it every third of that time; the commit point of a replace is written
only while the lease is still this writer's (:data:`WHILE_HELD`). A second writer is refused
in one line naming the holder and when its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from explgraph.core.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

LABEL = "WriteLease"
#: how long a lease lasts without renewal (a killed writer blocks others this long at most)
LEASE_SECONDS = 60.0
#: the unique constraint that makes two concurrent first takes of one lease impossible
CONSTRAINT = (
    f"CREATE CONSTRAINT write_lease_model IF NOT EXISTS FOR (l:{LABEL}) "
    "REQUIRE l.model_id IS UNIQUE"
)
#: the start of a statement that runs only while the lease of ``$lease_model`` holds
#: ``$lease_token`` (it matches no row otherwise)
WHILE_HELD = (
    f"MATCH (lease:{LABEL}) WHERE lease.model_id = $lease_model AND lease.token = $lease_token "
)

TAKE = (
    f"MERGE (l:{LABEL} {{model_id: $id}}) SET l.claim = $token WITH l "
    "WHERE l.token IS NULL OR l.token = $token OR l.token = $stale OR l.expires < timestamp() "
    "SET l.token = $token, l.holder = $holder, l.host = $host, l.pid = $pid, "
    "l.since = timestamp(), l.expires = timestamp() + $ms RETURN l.token AS token"
)
READ = (
    f"MATCH (l:{LABEL}) WHERE l.model_id = $id RETURN l.token AS token, l.holder AS holder, "
    "l.host AS host, l.pid AS pid, l.expires - timestamp() AS left_ms"
)
RENEW = (
    f"MATCH (l:{LABEL}) WHERE l.model_id = $id AND l.token = $token "
    "SET l.expires = timestamp() + $ms RETURN l.token AS token"
)
RELEASE = f"MATCH (l:{LABEL}) WHERE l.model_id = $id AND l.token = $token DELETE l"
LIVE = (
    f"MATCH (l:{LABEL}) WHERE l.expires >= timestamp() RETURN l.model_id AS model_id, "
    "l.holder AS holder, l.host AS host, l.pid AS pid, l.expires - timestamp() AS left_ms "
    "ORDER BY model_id"
)

#: runs one write statement in its own transaction and returns its rows (thread-safe)
Runner = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


def describe(row: dict[str, Any]) -> str:
    """``process 12 on host (lease expires in 41 s)`` for a row of :data:`READ` / :data:`LIVE`."""
    left = max(0, int(row.get("left_ms") or 0)) / 1000
    return f"{row.get('holder') or 'another writer'} (its lease expires in {left:.0f} s)"


class WriteLease:
    """The lease of one model. :meth:`acquire`, then :meth:`release` (renewed in between)."""

    def __init__(self, run: Runner, model_id: str, *, seconds: float = LEASE_SECONDS) -> None:
        self.run, self.model_id, self.seconds = run, model_id, seconds
        self.token = uuid.uuid4().hex
        self.lost = False
        self.renewed = 0.0  # time.monotonic() of the last take or renewal
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def params(self) -> dict[str, str]:
        """The parameters of :data:`WHILE_HELD` for this lease."""
        return {"lease_model": self.model_id, "lease_token": self.token}

    def acquire(self) -> None:
        """Take the lease, or raise :class:`StoreUnavailable` naming its holder."""
        stale = ""
        for attempt in range(4):
            try:
                taken = self.run(TAKE, self._take_params(stale))
            except StoreError:  # two first takes at once: the unique constraint refused one
                time.sleep(0.2 * (attempt + 1))
                continue
            if taken and taken[0]["token"] == self.token:
                self.renewed = time.monotonic()
                self._start_renewing()
                return
            holder = self._holder()
            if holder and _dead_here(holder) and not stale:
                stale = str(holder["token"])  # its process is gone: take over, once
                continue
            raise StoreUnavailable(
                f"model {self.model_id!r} is being written by {describe(holder or {})}: wait "
                "for that write to finish, then run this again"
            )
        raise StoreUnavailable(f"could not take the write lease of model {self.model_id!r}")

    def _take_params(self, stale: str) -> dict[str, Any]:
        host = socket.gethostname()
        return {
            "id": self.model_id,
            "token": self.token,
            "stale": stale or "-",
            "holder": f"process {os.getpid()} on {host}",
            "host": host,
            "pid": os.getpid(),
            "ms": int(self.seconds * 1000),
        }

    def _holder(self) -> dict[str, Any] | None:
        rows = self.run(READ, {"id": self.model_id})
        return rows[0] if rows else None

    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"lease {self.model_id}", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                kept = self.run(RENEW, {"id": self.model_id, "token": self.token,
                                        "ms": int(self.seconds * 1000)})  # fmt: skip
            except StoreError as error:  # the server is unreachable: try again next round
                log.debug("could not renew the write lease of %s: %s", self.model_id, error)
                continue
            if kept:
                self.renewed = time.monotonic()
            else:
                self.lost = True
                log.warning(
                    "the write lease of %s was lost (taken after it expired)", self.model_id
                )
                return

    def check(self) -> None:
        """Raise unless the lease is surely still held: not lost, and renewed less than 80% of
        its length ago (a writer that stalled longer stops before it writes again)."""
        if self.lost or time.monotonic() - self.renewed > 0.8 * self.seconds:
            raise StoreError(
                f"this writer lost the write lease of model {self.model_id!r} (it stalled for "
                "longer than the lease lasts, and another writer may have taken over): it "
                "stopped; run it again"
            )

    def release(self) -> None:
        """Stop renewing and delete the lease (best effort: it expires anyway)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            self.run(RELEASE, {"id": self.model_id, "token": self.token})
        except StoreError as error:
            log.debug("could not release the write lease of %s: %s", self.model_id, error)


def alive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of :data:`LIVE` whose holder may still be writing (not a process of this host
    that has ended: its lease is taken over by the next writer at once)."""
    return [row for row in rows if not _dead_here(row)]


def _dead_here(holder: dict[str, Any]) -> bool:
    """Whether the holder is a process of this host that does not exist any more."""
    if holder.get("host") != socket.gethostname() or holder.get("pid") is None:
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False


__all__ = [
    "CONSTRAINT",
    "LABEL",
    "LEASE_SECONDS",
    "LIVE",
    "WHILE_HELD",
    "WriteLease",
    "alive",
    "describe",
]
