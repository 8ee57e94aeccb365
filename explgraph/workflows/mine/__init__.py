"""The mine workflow: miner → rows → store, resumable and idempotent.

A re-run with the same inputs finds the stored model (same run digest) and stops; an interrupted
run reuses the feature cache and the per-layer learning checkpoints. The model is marked
``mining`` while it is written and ``complete`` only at the end.

Pieces, in the order a run uses them: :mod:`.request` (what was asked), :mod:`.plan` (records,
CNN, settings, refusals before work), :mod:`.digest` (the run's identity), :mod:`.compute` (the
mining call), :mod:`.write` (rows into the store), :mod:`.workflow` (:func:`run_mine`).
"""

from explgraph.workflows.mine.plan import select_records
from explgraph.workflows.mine.request import MineRequest, MineSummary
from explgraph.workflows.mine.workflow import run_mine

__all__ = ["MineRequest", "MineSummary", "run_mine", "select_records"]
