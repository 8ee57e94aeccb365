"""``run_mine``: plan the run, skip it when the store already holds it, mine, write."""

from __future__ import annotations

import dataclasses
import logging
import time

from explgraph.core.progress import NULL_PROGRESS, Progress
from explgraph.workflows.mine.compute import mine_planned
from explgraph.workflows.mine.digest import already_stored
from explgraph.workflows.mine.plan import MinePlan, plan_run
from explgraph.workflows.mine.request import MineRequest, MineSummary
from explgraph.workflows.mine.write import write_result
from graphstore import open_store
from graphstore.settings import StoreSettings
from miner.graph import GraphSettings, distributed

logger = logging.getLogger(__name__)


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
    notes = plan.notes + ([] if summary.n_edges else [no_parent_edges(plan)])
    for note in notes:
        logger.info(note)
    return dataclasses.replace(summary, seconds=time.perf_counter() - started, notes=notes)


def no_parent_edges(plan: MinePlan) -> str:
    """The warning for a graph written without PARENT edges, with the reason and the fix: its
    patterns are unlinked, so path, relation and part queries have nothing to follow."""
    settings = plan.settings
    if len(plan.layers) < 2:
        why = (
            f"only one layer was mined ({plan.layers[0]}) and PARENT edges link adjacent "
            "layers; name two or more with --layers"
        )
    elif not settings.use_parents:
        why = "the layers were learned without parents (use_parents is off)"
    elif settings.iterations < 2:
        why = (
            f"{settings.iterations} EM iteration(s) per layer: parents are chosen in every "
            "iteration but the last, so none were; mine with --iterations 2 or more "
            f"(default {GraphSettings().iterations})"
        )
    else:
        why = "no candidate parent was kept in the layer above (see docs/method.md §5.3)"
    return f"warning: {plan.model_id} was written with 0 PARENT edges: {why}"


__all__ = ["no_parent_edges", "run_mine"]
