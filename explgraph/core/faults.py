"""Crash points for fault-injection tests: ``EXPLGRAPH_FAULT_AT`` ends the process at an instant.

The store writer and the miner's stages call :func:`fault_point` at the instants listed in
:data:`FAULT_POINTS` (one registry for the whole project). When the environment variable
``EXPLGRAPH_FAULT_AT`` names that point (a comma-separated list is allowed; ``point@N`` fires on
the N-th time the point is reached, counting from 1), the process ends at once with ``os._exit``
— no ``finally`` blocks, no flushing, no driver cleanup, like ``kill -9`` — with exit status
``EXPLGRAPH_FAULT_EXIT`` (default :data:`FAULT_EXIT_CODE`). ``EXPLGRAPH_FAULT_SIGNAL=KILL`` (or
``INT``, Ctrl-C at that instant) sends the process that signal instead. Unset, a fault point
costs one dictionary lookup.

Example (in a child process)::

    EXPLGRAPH_FAULT_AT=replace:before-switch explgraph mine ...   # exits 86 mid-replace
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "EXPLGRAPH_FAULT_AT"
FAULT_EXIT_ENV = "EXPLGRAPH_FAULT_EXIT"
FAULT_SIGNAL_ENV = "EXPLGRAPH_FAULT_SIGNAL"
FAULT_EXIT_CODE = 86

#: Every crash point, in the order a model replacement reaches them, with what is on disk then.
FAULT_POINTS: dict[str, str] = {
    "write:safety-copy": "LadybugDB: the safety copy of the store and its marker are written, the "
    "bulk write's transaction not yet begun",
    "write:model-node": "the new copy's Model node is written (LadybugDB: inside the "
    "transaction; Bolt: the staging Model, status 'staging')",
    "write:nodes": "every node of the new copy is written, no relationship yet",
    "write:batch": "after each Bolt write batch of the new copy (use @N to pick one); LadybugDB: "
    "after each bulk COPY inside the transaction",
    "replace:before-switch": "the new copy is complete but not yet switched in (LadybugDB: "
    "before COMMIT; Bolt: staging complete, commit marker not written)",
    "replace:switch-marked": "Bolt: the commit marker is written (staging status 'switching'); "
    "the old copy is still there. LadybugDB: right after COMMIT",
    "write:checkpointed": "LadybugDB: a bulk write is committed, verified and checkpointed; its "
    "safety copy and marker are not yet removed",
    "replace:old-deleted": "Bolt: the old copy is deleted, the staging copy not yet renamed",
    "replace:renaming": "Bolt: after each rename batch of the staging copy (use @N)",
    "replace:done": "the switch is finished, before write_model returns",
    "delete:marked": "delete_model: the model is marked 'deleting' (Bolt) / the delete "
    "transaction has begun (LadybugDB)",
    "delete:partial": "delete_model: some of the model's nodes are deleted, the Model node not yet",
    "features.batch": "mining: a batch of feature maps is appended to the unfinished cache entry",
    "features.commit": "mining: all maps written, the cache entry not yet renamed into place",
    "learn.iteration": "mining: after an EM iteration of a layer",
    "learn.checkpoint": "mining: just after a finished layer's checkpoint is saved",
    "mine.write": "mining: the graph is learned, just before it is written into the store",
    "explainer.checkpoint": "explainer training: just after a finished epoch's checkpoint is saved",
}

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """End the process with ``os._exit`` if ``EXPLGRAPH_FAULT_AT`` names ``name`` (see module)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    if name not in FAULT_POINTS:  # a typo in the writer would silently never fire
        raise ValueError(f"unknown fault point {name!r}; known: {', '.join(FAULT_POINTS)}")
    _hits[name] = _hits.get(name, 0) + 1
    for item in wanted.split(","):
        point, _, nth = item.strip().partition("@")
        if point == name and (not nth or int(nth) == _hits[name]):
            _die()


def _die() -> None:
    """``os._exit``, or the signal named by ``EXPLGRAPH_FAULT_SIGNAL`` sent to this process."""
    which = os.environ.get(FAULT_SIGNAL_ENV, "").upper()
    number = getattr(signal, f"SIG{which}", None) if which else None
    if number is not None:
        os.kill(os.getpid(), number)
        if which != "KILL":  # SIGINT: let the handler raise KeyboardInterrupt
            return
    os._exit(int(os.environ.get(FAULT_EXIT_ENV, FAULT_EXIT_CODE)))


__all__ = [
    "FAULT_ENV",
    "FAULT_EXIT_CODE",
    "FAULT_EXIT_ENV",
    "FAULT_POINTS",
    "FAULT_SIGNAL_ENV",
    "fault_point",
]
