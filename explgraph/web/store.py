"""Read-only store handles for the explorer's request threads, and a time limit on user queries.

The server answers requests on a thread pool and every page reads the store. :class:`ReaderPool`
keeps a few read-only handles (LadybugDB: connections of one database; Bolt: handles of their
own) and lends one to each query, so a long query holds one handle, never the whole store, and
other pages keep rendering. Console and canned queries run through
:meth:`ReaderPool.run_limited`: on a worker thread of their own, stopped by the engine's
interrupt at the time limit; where the engine cannot interrupt (Bolt), the explorer stops
waiting, the handle finishes on its own and comes back to the pool then. At most
``user_slots`` user queries hold handles at once, so pages always find one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pyarrow as pa

from explgraph.core.errors import StoreError, StoreUnavailable
from graphstore import GraphStore, open_store
from graphstore.settings import StoreSettings

T = TypeVar("T")
#: read-only handles kept at most (pages and user queries together)
POOL_SIZE = 4
#: user queries (console, canned) that may run at once; the other handles stay for pages
USER_SLOTS = 2
#: how long a stopped query may take to wind down before the explorer stops waiting for it
_WIND_DOWN_S = 2.0
_POLL_S = 0.05
log = logging.getLogger(__name__)


class QueryTimeLimit(StoreError):
    """A console or canned query ran past the explorer's time limit and was stopped."""


class ExplorerBusy(StoreUnavailable):
    """No handle for a user query now: earlier long queries hold them, or the server stops."""


class _LimitedCall:
    """One user query on its worker thread: the handle it borrowed, its outcome."""

    def __init__(self, work: Callable[[GraphStore], Any]) -> None:
        self.work = work
        self.reader: GraphStore | None = None
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()  # an interrupt never lands after the handle went back

    def interrupt(self) -> bool:
        """Stop the query if it still runs; False where its engine cannot."""
        with self.lock:
            if self.finished or self.reader is None:
                return True
            return self.reader.interrupt()


class ReaderPool(GraphStore):
    """A read-only :class:`GraphStore` whose queries each borrow one of a few handles.

    Every engine-neutral read (``list_models``, ``describe_model`` ...) goes through
    :meth:`query`. Writes are refused like on any read-only handle.
    """

    def __init__(
        self,
        spec: str,
        *,
        settings: StoreSettings | None = None,
        size: int = POOL_SIZE,
        user_slots: int = USER_SLOTS,
    ) -> None:
        super().__init__(spec, read_only=True)
        self._settings = settings
        self._primary = open_store(spec, read_only=True, settings=settings)
        self.engine = self._primary.engine
        self._idle: list[GraphStore] = [self._primary]
        self._lent: set[GraphStore] = set()
        self._opening = 0
        self._size = max(size, user_slots + 1)
        self._cond = threading.Condition()
        self._user_slots = threading.BoundedSemaphore(user_slots)
        self._closing = False

    # pages -----------------------------------------------------------------------------------

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run a read query on a borrowed handle (``write=True`` is refused by the engine)."""
        with self._borrowed() as reader:
            return reader.query(cypher, params, write=write)

    # user queries ----------------------------------------------------------------------------

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
        if not self._user_slots.acquire(timeout=limit_s):
            raise ExplorerBusy(
                "the explorer is busy with other long queries: try again in a minute"
            )
        call = _LimitedCall(work)
        worker = threading.Thread(
            target=self._run_call, args=(call,), name="explorer-query", daemon=True
        )
        worker.start()
        while not call.done.wait(_POLL_S):
            if self._closing:
                call.interrupt()
                raise ExplorerBusy("the explorer is stopping: the query was stopped")
            if time.monotonic() >= deadline:
                raise self._stopped(call, limit_s)
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    def _run_call(self, call: _LimitedCall) -> None:
        try:
            with self._borrowed() as reader:
                call.reader = reader
                try:
                    call.result = call.work(reader)
                finally:
                    with call.lock:
                        call.finished = True
        except BaseException as error:  # handed to the waiting request thread
            call.error = error
        finally:
            self._user_slots.release()
            call.done.set()

    @staticmethod
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
            "waiting (the server may still finish it); narrow it (WHERE, LIMIT) or run it "
            "with `explgraph query`"
        )

    # the handles -----------------------------------------------------------------------------

    @contextmanager
    def _borrowed(self) -> Iterator[GraphStore]:
        reader = self._borrow()
        try:
            yield reader
        finally:
            with self._cond:
                self._lent.discard(reader)
                self._idle.append(reader)
                self._cond.notify()

    def _borrow(self) -> GraphStore:
        with self._cond:
            while True:
                if self._closing:
                    raise ExplorerBusy("the explorer is stopping")
                if self._idle:
                    reader = self._idle.pop()
                    self._lent.add(reader)
                    return reader
                if len(self._lent) + self._opening < self._size:
                    self._opening += 1  # counts towards the size while it opens
                    break
                self._cond.wait()
        try:
            reader = self._open_reader()
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            self._lent.add(reader)
        return reader

    def _open_reader(self) -> GraphStore:
        shared = self._primary.reader()
        if shared is not None:
            return shared
        return open_store(self.spec, read_only=True, settings=self._settings)

    def stop(self) -> None:
        """Stop every query now running and refuse new ones (the server is stopping)."""
        with self._cond:
            self._closing = True
            lent = list(self._lent)
            self._cond.notify_all()
        for reader in lent:
            try:
                reader.interrupt()
            except Exception:  # stopping: a handle that cannot be interrupted is left to exit
                log.debug("interrupting a store handle failed", exc_info=True)

    def ensure_schema(self) -> None:
        """Nothing to do on a read-only handle."""

    def close(self, wait_s: float = 3.0) -> None:
        """Stop running queries, then close every handle (the shared database last).

        A handle still busy after ``wait_s`` (a Bolt query the engine cannot stop) is left
        open for the process's exit, and so is the database it shares.
        """
        self.stop()
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._lent and time.monotonic() < deadline:
                self._cond.wait(max(deadline - time.monotonic(), 0.0))
            idle, self._idle = self._idle, []
            busy = bool(self._lent)
        for reader in sorted(idle, key=lambda r: r is self._primary):
            if reader is self._primary and busy:
                continue
            try:
                reader.close()
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


__all__ = ["POOL_SIZE", "USER_SLOTS", "ExplorerBusy", "QueryTimeLimit", "ReaderPool"]
