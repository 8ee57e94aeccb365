"""The ground floor every explgraph library stands on: errors, progress, fault points.

It imports nothing of the project and nothing heavy (no torch, no rich), so ``miner``,
``graphstore``, ``queries``, the workflows, the CLI and the web explorer may all use it.

- :mod:`explgraph.core.errors`: the error tree (root :class:`ExplGraphError`).
- :mod:`explgraph.core.progress`: the :class:`Progress` protocol and its silent
  :data:`NULL_PROGRESS` (the CLI supplies rich bars).
- :mod:`explgraph.core.faults`: named crash points for the fault-injection tests.
"""

from explgraph.core.errors import (
    AnnotationError,
    AuthenticationFailed,
    ExplGraphError,
    ImageError,
    InputError,
    MiningError,
    ModelError,
    QuerySyntaxError,
    ReadOnlyViolation,
    StoreError,
    StoreUnavailable,
    UnknownModel,
)
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, NullProgress, Progress, Task

__all__ = [
    "NULL_PROGRESS",
    "AnnotationError",
    "AuthenticationFailed",
    "ExplGraphError",
    "ImageError",
    "InputError",
    "MiningError",
    "ModelError",
    "NullProgress",
    "Progress",
    "QuerySyntaxError",
    "ReadOnlyViolation",
    "StoreError",
    "StoreUnavailable",
    "Task",
    "UnknownModel",
    "fault_point",
]
