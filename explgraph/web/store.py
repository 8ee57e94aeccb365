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

A read-only LadybugDB database reads the snapshot it opened: commits by another process (a
``mine`` or ``compare`` beside ``serve``) stay invisible to it and to every connection on it
until it is opened again. :meth:`ReaderPool.refresh` (once per request) compares the store
files' change stamp (:func:`change_stamp`) with the one the handles were opened at and, when
it moved, opens a new set of handles; queries already running finish on the old set, which is
closed when its last handle comes back. A Bolt server shows every commit to every query, so a
Bolt store needs no stamp.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from explgraph.core.errors import StoreError, StoreUnavailable
from graphstore import GraphStore, open_store
from graphstore.address import DATABASE_FILE, parse_store_address
from graphstore.settings import StoreSettings

T = TypeVar("T")
#: handles for pages (their queries are short; more requests wait for one)
PAGE_HANDLES = 4
#: console and canned queries that may run at once, each on a handle of its own
USER_SLOTS = 2
#: how long a stopped query may take to wind down before the explorer stops waiting for it
_WIND_DOWN_S = 2.0
_POLL_S = 0.05
#: after a failed reopen (a writer recovering the store), the next try waits this long
_REOPEN_RETRY_S = 1.0
#: the files a LadybugDB commit changes (the lock file is touched by readers too: left out)
_CHANGED_BY_WRITES = (DATABASE_FILE, f"{DATABASE_FILE}.wal", f"{DATABASE_FILE}.shadow")
log = logging.getLogger(__name__)


class QueryTimeLimit(StoreError):
    """A console or canned query ran past the explorer's time limit and was stopped."""


class ExplorerBusy(StoreUnavailable):
    """No handle for a query now: earlier long queries hold them, or the server stops."""


class _Retired(Exception):
    """The handles were replaced by newer ones: borrow from the current set."""


def change_stamp(spec: str) -> Hashable | None:
    """What the store's files look like now (identity, size and time of every file a commit
    writes), or None for a Bolt store, whose server shows each commit to every query.

    Two stamps differ whenever another process committed in between (LadybugDB appends each
    commit to its write-ahead file and folds it into the database file on checkpoint); reading
    the store never changes it.
    """
    address = parse_store_address(spec)
    if address.kind != "folder" or address.path is None:
        return None
    stamp = []
    for name in _CHANGED_BY_WRITES:
        try:
            seen = os.stat(address.path / name)
        except OSError:
            continue
        stamp.append((name, seen.st_ino, seen.st_size, seen.st_mtime_ns))
    return tuple(stamp)


def _close_all(handles: list[GraphStore], last: GraphStore | None = None) -> None:
    """Close ``handles``, ``last`` (the database the others' connections share) last."""
    for handle in sorted(handles, key=lambda h: h is last):
        try:
            handle.close()
        except StoreError:
            log.debug("closing a store handle failed", exc_info=True)


class _Handles:
    """At most ``size`` read-only handles, opened when first needed, lent one at a time."""

    def __init__(
        self, opener: Callable[[], GraphStore], size: int, last: GraphStore | None = None
    ) -> None:
        self._opener = opener
        self._size = size
        self._last = last  # closed after the others (their connections share its database)
        self._idle: list[GraphStore] = []
        self._lent: set[GraphStore] = set()
        self._opening = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._retired = False

    def add(self, handle: GraphStore) -> None:
        """Keep an already open handle (it counts towards the size)."""
        with self._cond:
            self._idle.append(handle)

    def borrow(self, timeout: float | None = None) -> GraphStore:
        """An idle handle, a new one while there is room, or the next one given back.

        Raises:
            ExplorerBusy: none came within ``timeout`` seconds, or the pool is stopping.
            _Retired: the pool was replaced by a newer one (borrow there).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stopping:
                    raise ExplorerBusy("the explorer is stopping")
                if self._retired:
                    raise _Retired()
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
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._cond.notify()
                done = self._take_idle_when_retired()
            _close_all(done, self._last)
            raise
        with self._cond:
            self._opening -= 1
            self._lent.add(handle)
            self._cond.notify()
        return handle

    def give_back(self, handle: GraphStore) -> None:
        """Return a borrowed handle (the last one back to a retired pool closes them all)."""
        with self._cond:
            self._lent.discard(handle)
            self._idle.append(handle)
            self._cond.notify_all()
            done = self._take_idle_when_retired()
        _close_all(done, self._last)

    def retire(self) -> None:
        """Lend no more (borrowers go to the newer pool); close every handle once all are back."""
        with self._cond:
            self._retired = True
            self._cond.notify_all()
            done = self._take_idle_when_retired()
        _close_all(done, self._last)

    def _take_idle_when_retired(self) -> list[GraphStore]:
        """The idle handles, taken out, once a retired pool has none lent or opening (lock held)."""
        if not self._retired or self._lent or self._opening:
            return []
        idle, self._idle = self._idle, []
        return idle

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


class _Snapshot:
    """One opening of the store: the pages' handles (connections on the primary's database
    where the engine has them) and the user queries' handles, and the stamp they were opened at.
    """

    def __init__(
        self,
        primary: GraphStore,
        open_handle: Callable[[], GraphStore],
        stamp: Hashable | None,
        page_handles: int,
        user_slots: int,
    ) -> None:
        self.primary = primary
        self.stamp = stamp
        self.pages = _Handles(lambda: primary.reader() or open_handle(), page_handles, primary)
        self.pages.add(primary)
        self.users = _Handles(open_handle, user_slots)

    def retire(self) -> None:
        """Lend no more; each pool closes its handles when the last one comes back."""
        self.users.retire()
        self.pages.retire()

    def stop(self) -> None:
        """Interrupt every lent handle's query and refuse new loans."""
        self.users.stop()
        self.pages.stop()


class ReaderPool(GraphStore):
    """A read-only :class:`GraphStore` whose queries each borrow a handle.

    Every engine-neutral read (``list_models``, ``describe_model`` ...) goes through
    :meth:`query`. Writes are refused like on any read-only handle. :meth:`refresh` moves to
    a new snapshot of the store when another process has written it.
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
        self._sizes = (max(page_handles, 1), max(user_slots, 1))
        stamp = change_stamp(spec)  # before the open: a commit in between shows up as a change
        primary = self._open_handle()
        # what the engine-neutral reads branch on is the engine's, not this wrapper's
        self.engine = primary.engine
        self.transactional = primary.transactional
        self._snapshot = _Snapshot(primary, self._open_handle, stamp, *self._sizes)
        self._retired: list[_Snapshot] = []
        self._lock = threading.Lock()  # the snapshot swap, and refreshes one at a time
        self._stopping = False
        self._retry_at = 0.0
        #: how many times the handles moved to a newer snapshot
        self.generation = 0

    def _open_handle(self) -> GraphStore:
        return open_store(self.spec, read_only=True, settings=self._settings)

    def changed(self) -> bool:
        """Whether the store's files changed since the current handles were opened (two
        ``stat`` calls; always False for a Bolt store)."""
        stamp = change_stamp(self.spec)
        return stamp is not None and stamp != self._snapshot.stamp

    def refresh(self) -> bool:
        """Open new handles when the store changed, so that later queries see every commit;
        True when it did. Queries running now finish on the old handles (closed when the last
        comes back). Another thread's refresh in progress, or a store that cannot be opened
        now (a writer recovering it), leaves the current handles (the next call tries again).
        """
        if not self.changed() or self._stopping or time.monotonic() < self._retry_at:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another request reopens it now
        try:
            stamp = change_stamp(self.spec)
            if stamp == self._snapshot.stamp or self._stopping:
                return False
            try:
                primary = self._open_handle()
            except StoreError as error:
                self._retry_at = time.monotonic() + _REOPEN_RETRY_S
                log.info("the store changed but cannot be read again yet: %s", error)
                return False
            old = self._snapshot
            self._snapshot = _Snapshot(primary, self._open_handle, stamp, *self._sizes)
            self._retired = [s for s in self._retired if s.pages.busy or s.users.busy]
            self._retired.append(old)
            self.generation += 1
            if self._stopping:  # stop() ran while the new handles opened
                self._snapshot.stop()
        finally:
            self._lock.release()
        old.retire()
        log.info("the store changed: reading it again")
        return True

    def _borrow(self, pool: str, timeout: float | None = None) -> tuple[_Handles, GraphStore]:
        """A handle from the current snapshot's ``pages`` or ``users`` pool, and that pool."""
        while True:
            handles: _Handles = getattr(self._snapshot, pool)
            try:
                return handles, handles.borrow(timeout)
            except _Retired:
                continue  # replaced while waiting: the current snapshot lends now

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run a read query on a borrowed handle (``write=True`` is refused by the engine)."""
        pages, handle = self._borrow("pages")
        try:
            return handle.query(cypher, params, write=write)
        finally:
            pages.give_back(handle)

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
        users, handle = self._borrow("users", timeout=limit_s)
        call = _LimitedCall(work, handle)

        def run_and_give_back() -> None:
            try:
                call.run()
            finally:
                users.give_back(call.handle)
                call.done.set()

        threading.Thread(target=run_and_give_back, name="explorer-query", daemon=True).start()
        while not call.done.wait(_POLL_S):
            if users.stopping:
                break
            if time.monotonic() >= deadline:
                raise _stopped(call, limit_s)
        if users.stopping:
            raise ExplorerBusy("the explorer is stopping: the query was stopped")
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    def stop(self) -> None:
        """Interrupt every query now running and refuse new ones (the server is stopping)."""
        self._stopping = True  # no lock: this runs while the server stops, never waits
        for snapshot in [self._snapshot, *self._retired]:
            snapshot.stop()

    def ensure_schema(self) -> None:
        """Nothing to do on a read-only handle."""

    def close(self, wait_s: float = 3.0) -> None:
        """Stop running queries, then close every handle (the shared database last).

        A handle still busy after ``wait_s`` (a Bolt query the engine cannot stop) is left
        open for the process's exit, and so is the database it shares.
        """
        self.stop()
        deadline = time.monotonic() + wait_s
        for snapshot in [self._snapshot, *self._retired]:
            idle = snapshot.users.drain(deadline) + snapshot.pages.drain(deadline)
            if snapshot.pages.busy:  # its database still serves a lent connection
                idle = [handle for handle in idle if handle is not snapshot.primary]
            _close_all(idle, snapshot.primary)

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


__all__ = [
    "PAGE_HANDLES",
    "USER_SLOTS",
    "ExplorerBusy",
    "QueryTimeLimit",
    "ReaderPool",
    "change_stamp",
]
