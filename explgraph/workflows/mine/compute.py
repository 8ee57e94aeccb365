"""The mining call: a planned run handed to :func:`miner.mining.mine_graph` (no store involved)."""

from __future__ import annotations

from pathlib import Path

from explgraph.core.progress import NULL_PROGRESS, Progress
from explgraph.workflows.mine.plan import MinePlan, background_records
from explgraph.workflows.mine.request import MineRequest
from miner.mining import MiningResult, mine_graph


def mine_planned(
    plan: MinePlan, request: MineRequest, progress: Progress = NULL_PROGRESS
) -> MiningResult:
    """Extract the features (cached), learn the graph (checkpointed) and select its firings."""
    return mine_graph(
        plan.model,
        plan.records,
        plan.layers,
        settings=plan.settings,
        cache_dir=Path(request.cache_dir),
        device=request.device,
        batch_size=request.batch_size,
        background=background_records(request.background),
        fires_per_image=request.fires_per_image,
        fires_per_pattern=request.fires_per_pattern,
        progress=progress,
    )


__all__ = ["mine_planned"]
