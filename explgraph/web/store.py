"""Read-only store handles for the explorer's request threads, and a time limit on user queries.

The server answers requests on a thread pool and every page reads the store. :class:`ReaderPool`
lends each query one of a few read-only handles, so a long query holds one handle, never the
whole store, and other pages keep rendering:

- pages share the first handle's database (LadybugDB: a connection each on one database; Bolt:
  handles of their own);
- console and canned queries (:meth:`ReaderPool.run_limited`) each get a handle of their own
  (LadybugDB: a database of its own, because one database runs its queries on one set of
  worker threads, which a long query fills), at most ``user_slots`` at once, on a worker
  thread, stopped by the engine's interrupt at the time limit. Where the engine cannot
  interrupt (Bolt), the explorer stops waiting; the handle comes back when the server is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from explgraph.core.errors import StoreError, StoreUnavailable
from graphstore import GraphStore, open_store
from graphstore.settings import StoreSettings

T = TypeVar("T")
#: handles for pages (their queries are short; more requests wait for one)
PAGE_HANDLES = 4
#: console and canned queries that may run at once, each on a handle of its own
USER_SLOTS = 2
#: how long a stopped query may take to wind down before the explorer stops waiting for it
_WIND_DOWN_S = 2.0
_POLL_S = 0.05
log = logging.getLogger(__name__)


class QueryTimeLimit(StoreError):
    """A console or canned query ran past the explorer's time limit and was stopped."""


class ExplorerBusy(StoreUnavailable):
    """No handle for a query now: earlier long queries hold them, or the server stops."""


class _Handles:
    """At most ``size`` read-only handles, opened when first needed, lent one at a time."""

    def __init__(self, opener: Callable[[], GraphStore], size: int) -> None:
        self._opener = opener
        self._size = size
        self._idle: list[GraphStore] = []
        self._lent: set[GraphStore] = set()
        self._opening = 0
        self._cond = threading.Condition()
        self._stopping = False

    def add(self, handle: GraphStore) -> None:
        """Keep an already open handle (it counts towards the size)."""
        with self._cond:
            self._idle.append(handle)

    def borrow(self, timeout: float | None = None) -> GraphStore:
        """An idle handle, a new one while there is room, or the next one given back.

        Raises:
            ExplorerBusy: none came within ``timeout`` seconds, or the pool is stopping.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stopping:
                    raise ExplorerBusy("the explorer is stopping")
                if self._idle:
                    handle = self._idle.pop()
                    self._lent.add(handle)
                    return handle
                if len(self._idle) + len(self._lent) + self._opening < self._size:
                    self._opening += 1
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ExplorerBusy(
                        "the explorer is busy with other long queries: try again in a minute"
                    )
                self._cond.wait(left)
        try:
            handle = self._opener()
        finally:
            with self._cond:
                self._opening -= 1
                self._cond.notify()
        with self._cond:
            self._lent.add(handle)
        return handle

    def give_back(self, handle: GraphStore) -> None:
        """Return a borrowed handle."""
        with self._cond:
            self._lent.discard(handle)
            self._idle.append(handle)
            self._cond.notify_all()

    def stop(self) -> None:
        """Interrupt every lent handle's query and refuse new loans."""
        with self._cond:
            self._stopping = True
            lent = list(self._lent)
            self._cond.notify_all()
        for handle in lent:
            try:
                handle.interrupt()
            except Exception:  # stopping: a handle that cannot be interrupted is left to exit
                log.debug("interrupting a store handle failed", exc_info=True)

    def drain(self, deadline: float) -> list[GraphStore]:
        """Wait until every handle is back or ``deadline`` passes; the idle ones, taken out.
        Handles still lent then are left for the process's exit."""
        with self._cond:
            while self._lent and time.monotonic() < deadline:
                self._cond.wait(max(deadline - time.monotonic(), 0.0))
            idle, self._idle = self._idle, []
            return idle

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    @property
    def busy(self) -> bool:
        """Whether a handle is still lent."""
        with self._cond:
            return bool(self._lent)


class _LimitedCall:
    """One user query on its worker thread: its handle and its outcome."""

    def __init__(self, work: Callable[[GraphStore], Any], handle: GraphStore) -> None:
        self.work = work
        self.handle = handle
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()  # an interrupt never lands after the handle went back

    def run(self) -> None:
        try:
            self.result = self.work(self.handle)
        except BaseException as error:  # handed to the waiting request thread
            self.error = error
        finally:
            with self.lock:
                self.finished = True

    def interrupt(self) -> bool:
        """Stop the query if it still runs; False where its engine cannot."""
        with self.lock:
            return self.finished or self.handle.interrupt()


class ReaderPool(GraphStore):
    """A read-only :class:`GraphStore` whose queries each borrow a handle.

    Every engine-neutral read (``list_models``, ``describe_model`` ...) goes through
    :meth:`query`. Writes are refused like on any read-only handle.
    """

    def __init__(
        self,
        spec: str,
        *,
        settings: StoreSettings | None = None,
        page_handles: int = PAGE_HANDLES,
        user_slots: int = USER_SLOTS,
    ) -> None:
        super().__init__(spec, read_only=True)
        self._settings = settings
        self._primary = open_store(spec, read_only=True, settings=settings)
        # what the engine-neutral reads branch on is the engine's, not this wrapper's
        self.engine = self._primary.engine
        self.transactional = self._primary.transactional
        self._pages = _Handles(self._open_page_handle, max(page_handles, 1))
        self._pages.add(self._primary)
        self._users = _Handles(self._open_handle, max(user_slots, 1))

    def _open_page_handle(self) -> GraphStore:
        return self._primary.reader() or self._open_handle()

    def _open_handle(self) -> GraphStore:
        return open_store(self.spec, read_only=True, settings=self._settings)

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run a read query on a borrowed handle (``write=True`` is refused by the engine)."""
        handle = self._pages.borrow()
        try:
            return handle.query(cypher, params, write=write)
        finally:
            self._pages.give_back(handle)

    def run_limited(self, work: Callable[[GraphStore], T], limit_s: float) -> T:
        """``work(handle)`` on a worker thread, stopped when it runs past ``limit_s`` seconds.

        Raises:
            QueryTimeLimit: it ran past the limit (stopped by the engine's interrupt, or left
                to finish on the server where the engine cannot interrupt).
            ExplorerBusy: other user queries hold every slot until the limit, or the server
                is stopping.
            Exception: whatever ``work`` raised.
        """
        deadline = time.monotonic() + limit_s
        call = _LimitedCall(work, self._users.borrow(timeout=limit_s))

        def run_and_give_back() -> None:
            try:
                call.run()
            finally:
                self._users.give_back(call.handle)
                call.done.set()

        threading.Thread(target=run_and_give_back, name="explorer-query", daemon=True).start()
        while not call.done.wait(_POLL_S):
            if self._users.stopping:
                break
            if time.monotonic() >= deadline:
                raise _stopped(call, limit_s)
        if self._users.stopping:
            raise ExplorerBusy("the explorer is stopping: the query was stopped")
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    def stop(self) -> None:
        """Interrupt every query now running and refuse new ones (the server is stopping)."""
        self._users.stop()
        self._pages.stop()

    def ensure_schema(self) -> None:
        """Nothing to do on a read-only handle."""

    def close(self, wait_s: float = 3.0) -> None:
        """Stop running queries, then close every handle (the shared database last).

        A handle still busy after ``wait_s`` (a Bolt query the engine cannot stop) is left
        open for the process's exit, and so is the database it shares.
        """
        self.stop()
        deadline = time.monotonic() + wait_s
        idle = self._users.drain(deadline) + self._pages.drain(deadline)
        keep_primary = self._pages.busy  # its database still serves a lent connection
        for handle in sorted(idle, key=lambda h: h is self._primary):
            if handle is self._primary and keep_primary:
                continue
            try:
                handle.close()
            except StoreError:
                log.debug("closing a store handle failed", exc_info=True)

    # a read-only handle never writes: every bulk primitive refuses
    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        self._require_write("write nodes")

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._require_write("write relationships")

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        self._require_write("write nodes")

    def _upsert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._require_write("write relationships")


def _stopped(call: _LimitedCall, limit_s: float) -> QueryTimeLimit:
    """Interrupt a query past its limit and say what happened, in one line."""
    limit = f"{limit_s:g} s"
    if call.interrupt():
        call.done.wait(_WIND_DOWN_S)
        return QueryTimeLimit(
            f"the query ran past the explorer's time limit of {limit} and was stopped: "
            "narrow it (WHERE, LIMIT) or run it with `explgraph query`"
        )
    return QueryTimeLimit(
        f"the query ran past the explorer's time limit of {limit}: the explorer stopped "
        "waiting (the server may still finish it); narrow it (WHERE, LIMIT) or run it with "
        "`explgraph query`"
    )


__all__ = ["PAGE_HANDLES", "USER_SLOTS", "ExplorerBusy", "QueryTimeLimit", "ReaderPool"]
