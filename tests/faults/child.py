"""A child process for the fault suite: runs the explgraph CLI, or writes a synthetic model.

``python -m tests.faults.child cli ARGS...`` runs ``explgraph ARGS...`` through the console
entry point; ``python -m tests.faults.child write SPEC MODEL_ID SEED`` writes a small synthetic
model (``tests.helpers.stores.tiny_records``) into the store.

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


def _write(spec: str, model_id: str, seed: int) -> None:
    from tests.faults.storecheck import tiny_model
    from tests.helpers.stores import open_store

    with open_store(spec) as store:
        store.write_model(tiny_model(model_id, seed=seed))


def main() -> None:
    """Dispatch on the first argument: ``cli`` or ``write``."""
    _install()
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "write":
        _write(args[0], args[1], int(args[2]))
        return
    from explgraph.cli import main as cli_main

    sys.argv = ["explgraph", *args]
    cli_main()


if __name__ == "__main__":
    main()
