"""``run_mine``: plan the run, skip it when the store already holds it, mine, write."""

from __future__ import annotations

import dataclasses
import time

from explgraph.core.progress import NULL_PROGRESS, Progress
from explgraph.workflows.mine.compute import mine_planned
from explgraph.workflows.mine.digest import already_stored
from explgraph.workflows.mine.plan import plan_run
from explgraph.workflows.mine.request import MineRequest, MineSummary
from explgraph.workflows.mine.write import write_result
from graphstore import open_store
from graphstore.settings import StoreSettings
from miner.graph import distributed


def run_mine(
    request: MineRequest,
    store_spec: str,
    *,
    store_settings: StoreSettings | None = None,
    progress: Progress = NULL_PROGRESS,
) -> MineSummary:
    """Mine ``request.model`` on the images and write the graph into the store at ``store_spec``
    (opened with ``store_settings``: Bolt credentials).

    Under ``torchrun`` every rank calls this; rank 0 alone writes (the others return a summary
    with nothing written).
    """
    started = time.perf_counter()
    rank, _ = distributed.world()
    if rank == 0:  # open the store first: an unreachable server should fail before the work
        with open_store(store_spec, settings=store_settings) as store:
            store.ensure_schema()
    distributed.barrier()
    plan = plan_run(request)
    if not request.force and already_stored(store_spec, store_settings, plan.model_id, plan.digest):
        return MineSummary.nothing_written(plan.model_id, len(plan.records), reused=True)
    result = mine_planned(plan, request, progress)
    if rank != 0:
        return MineSummary.nothing_written(plan.model_id, result.features.num_images, reused=False)
    summary = write_result(result, plan, request, (store_spec, store_settings), progress)
    return dataclasses.replace(summary, seconds=time.perf_counter() - started)


__all__ = ["run_mine"]
