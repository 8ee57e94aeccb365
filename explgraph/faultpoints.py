"""Named instants at which a test can kill this process: fault injection for the fault suite.

``EXPLGRAPH_FAULT_AT=<point>`` (or ``<point>@<n>``: the n-th time the point is reached, from 1)
makes :func:`fault_point` send this process SIGKILL there — exactly what ``kill -9`` from outside
does, but at a precise instant. ``EXPLGRAPH_FAULT_SIGNAL=INT`` sends SIGINT instead (Ctrl-C at
that instant). Unset, a fault point costs one dictionary lookup.

Points (``tests/faults`` uses every one):

=====================  ==========================================================================
``features.batch``     after a batch of feature maps is appended to the unfinished cache entry
``features.commit``    all maps written, just before the cache entry is renamed into place
``learn.iteration``    after an EM iteration of a layer
``learn.checkpoint``   just after a finished layer's checkpoint is saved
``mine.write``         the graph is learned, just before it is written into the store
=====================  ==========================================================================
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_ENV = "EXPLGRAPH_FAULT_AT"
_reached: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Die here (SIGKILL, or the signal in ``EXPLGRAPH_FAULT_SIGNAL``) if the test asked to."""
    wanted = os.environ.get(_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] != (int(nth) if nth else 1):
        return
    which = os.environ.get("EXPLGRAPH_FAULT_SIGNAL", "KILL").upper()
    number = getattr(signal, f"SIG{which}", None)
    if number is None or not hasattr(os, "kill"):
        os._exit(137)
    os.kill(os.getpid(), number)
    if number == getattr(signal, "SIGKILL", None):  # pragma: no cover - never returns
        os._exit(137)


__all__ = ["fault_point"]
