"""A child process for the fault suite: runs the explgraph CLI, or writes a synthetic model.

``python -m tests.faults.child cli ARGS...`` runs ``explgraph ARGS...`` through the console
entry point; ``python -m tests.faults.child write SPEC MODEL_ID SEED`` writes a small synthetic
model (``tests.helpers.stores.tiny_records``) into the store; ``write-sized`` writes a
replace-sized one (``tests.faults.storecheck.sized_model``: tens of thousands of edges, so the
engine's commit and checkpoint last long enough to be killed inside); ``delete SPEC MODEL_ID``
deletes a model.

``FAULT_MARKS=1`` prints ``MARK <time.monotonic()> <name>`` at every fault point the child
passes (and ``opened`` / ``done`` around the write), for :mod:`tests.faults.enginewatch`.
``FAULT_PAUSE_AT=<point>@N`` with ``FAULT_PAUSE_S=<seconds>`` makes the child sleep that long
after its mark at the N-th time it passes that point, inside the write: a signal the parent
sends within the pause lands mid-write however fast the machine (a Ctrl-C test must not race
the write to its end).
``FAULT_FILL_AT=<point>`` fills the disk of ``FAULT_FILL_DIR`` at that fault point, leaving
``FAULT_FILL_LEAVE`` bytes free.

``FAULT_KILL_WRITE=N`` sends this process SIGKILL (``kill -9``, no clean-up of any kind) just
before its N-th *store write primitive* — every call that changes the store: bulk node and
edge inserts and upserts, and every ``query(..., write=True)`` (deletes, status changes). With
``FAULT_KILL_WRITE=count`` nothing is killed and the number of primitives is printed at exit,
so a test can kill at every instant of a write without knowing how the writer is built.
Miner stages are killed with ``EXPLGRAPH_FAULT_AT`` (see :mod:`explgraph.core.faults`).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

_PRIMITIVES = ("_insert_nodes", "_insert_relationships", "_upsert_nodes", "_upsert_relationships")
_calls = 0


def _install() -> None:
    wanted = os.environ.get("FAULT_KILL_WRITE")
    if not wanted:
        return
    from graphstore import GraphStore

    def step() -> None:
        global _calls
        _calls += 1
        if wanted != "count" and _calls == int(wanted):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(method: Callable[..., Any], *, writes_only: bool) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not writes_only or kwargs.get("write"):
                step()
            return method(self, *args, **kwargs)

        return wrapper

    classes = [GraphStore]
    from graphstore.bolt_engine import BoltStore
    from graphstore.ladybug_engine import LadybugStore

    classes += [BoltStore, LadybugStore]
    for cls in classes:
        for name in _PRIMITIVES:
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name], writes_only=False))
        if "query" in cls.__dict__:
            setattr(cls, "query", wrap(cls.__dict__["query"], writes_only=True))  # noqa: B010
    if wanted == "count":
        atexit.register(lambda: print(f"write-primitives: {_calls}", flush=True))


def mark(name: str) -> None:
    """One ``MARK`` line when ``FAULT_MARKS`` is set."""
    if os.environ.get("FAULT_MARKS"):
        print(f"MARK {time.monotonic():.6f} {name}", flush=True)


def _fill_disk() -> None:
    """Fill the file system of ``FAULT_FILL_DIR`` until ``FAULT_FILL_LEAVE`` bytes are free."""
    import shutil

    folder = os.environ["FAULT_FILL_DIR"]
    leave = int(os.environ.get("FAULT_FILL_LEAVE") or 0)
    with open(os.path.join(folder, "filler-child"), "ab", buffering=0) as handle:
        while (free := shutil.disk_usage(folder).free) > leave:
            try:
                handle.write(b"\0" * min(free - leave, 1 << 20))
            except OSError:
                break
    mark("disk-filled")


def _install_marks() -> None:
    """Wrap every imported ``fault_point`` so that it prints a mark first (``FAULT_MARKS``), and
    so that ``FAULT_FILL_AT=<point>`` fills the disk there (:func:`_fill_disk`): a disk that
    becomes full at an exact instant of a write."""
    fill_at = os.environ.get("FAULT_FILL_AT")
    pause_at, _, pause_nth = os.environ.get("FAULT_PAUSE_AT", "").partition("@")
    if not (os.environ.get("FAULT_MARKS") or fill_at or pause_at):
        return
    import explgraph.core.faults as faults
    import graphstore.bolt_engine
    import graphstore.ladybug_engine
    import graphstore.lifecycle  # noqa: F401 - imported so that its fault_point is wrapped

    original = faults.fault_point
    passed: dict[str, int] = {}

    def marked(name: str) -> None:
        mark(name)
        passed[name] = passed.get(name, 0) + 1
        if name == fill_at:
            _fill_disk()
        if name == pause_at and passed[name] == int(pause_nth or 1):
            time.sleep(float(os.environ.get("FAULT_PAUSE_S") or 0))
        original(name)

    for module in list(sys.modules.values()):
        if getattr(module, "fault_point", None) is original:
            module.fault_point = marked  # type: ignore[union-attr]


def _write(spec: str, model_id: str, seed: int, *, sized: bool = False) -> None:
    from tests.faults.storecheck import sized_model, tiny_model
    from tests.helpers.stores import open_store

    records = (sized_model if sized else tiny_model)(model_id, seed=seed)
    with open_store(spec) as store:
        mark("opened")
        store.write_model(records)
        mark("done")


def _delete(spec: str, model_id: str) -> None:
    from tests.helpers.stores import open_store

    with open_store(spec) as store:
        mark("opened")
        store.delete_model(model_id)
        mark("done")


def _upsert(spec: str, model_id: str, seed: int) -> None:
    from tests.faults.storecheck import matches_frame
    from tests.helpers.stores import open_store

    with open_store(spec) as store:
        mark("opened")
        store.write_relationships("MATCHES", matches_frame(store, model_id, seed))
        mark("done")


def _open_for_writing(spec: str) -> None:
    """A writable open: it adds the write-time answers a store lacks (the backfill)."""
    from tests.helpers.stores import open_store

    mark("opening")
    with open_store(spec):
        mark("done")


def main() -> None:
    """Dispatch on the first argument: ``cli``, ``write``, ``write-sized``, ``delete``,
    ``upsert`` (MATCHES edges, :func:`tests.faults.storecheck.matches_frame`) or ``open``."""
    _install()
    _install_marks()
    mode, args = sys.argv[1], sys.argv[2:]
    if mode in ("write", "write-sized"):
        _write(args[0], args[1], int(args[2]), sized=mode == "write-sized")
        return
    if mode == "delete":
        _delete(args[0], args[1])
    elif mode == "upsert":
        _upsert(args[0], args[1], int(args[2]))
    elif mode == "open":
        _open_for_writing(args[0])
    if mode in ("delete", "upsert", "open"):
        return
    from explgraph.cli import main as cli_main

    sys.argv = ["explgraph", *args]
    cli_main()


if __name__ == "__main__":
    main()
