"""Writing a mining result: its rows into the store, its skipped images into the cache folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress
from explgraph.workflows.mine.plan import MinePlan
from explgraph.workflows.mine.request import MineRequest, MineSummary
from explgraph.workflows.rows import graph_records
from graphstore import open_store
from graphstore.settings import StoreSettings
from graphstore.versions import mark_store_format
from miner.data.boxes import SkippedImage, write_skipped
from miner.mining import MiningResult


def skipped_file_path(cache_dir: Path, model_id: str) -> Path:
    """Where a mine run lists its skipped images: ``<cache>/runs/<model id>/skipped.txt``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return cache_dir / "runs" / safe / "skipped.txt"


def record_skipped(cache_dir: Path, model_id: str, skipped: Sequence[SkippedImage]) -> Path | None:
    """Write (or, when nothing was skipped, remove) the run's ``skipped.txt``."""
    path = skipped_file_path(cache_dir, model_id)
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    return write_skipped(path, skipped)


def write_result(
    result: MiningResult,
    plan: MinePlan,
    request: MineRequest,
    store: tuple[str, StoreSettings | None],
    progress: Progress = NULL_PROGRESS,
) -> MineSummary:
    """Write ``result`` as model ``plan.model_id`` into the store ``(spec, settings)``, list the
    skipped images, and summarise the run (``seconds`` left at 0 for the caller to set)."""
    store_spec, store_settings = store
    rows = graph_records(
        result,
        plan.model_id,
        dataset=plan.dataset_name,
        weights=request.weights,
        extra_params={"run_digest": plan.digest, **request.run_params()},
    )
    fault_point("mine.write")
    with open_store(store_spec, settings=store_settings) as opened:
        opened.write_model(rows, progress=progress)
        mark_store_format(opened)
    skipped = plan.box_skipped + [SkippedImage(s.path, s.reason) for s in result.features.skipped]
    return MineSummary(
        model_id=plan.model_id,
        reused=False,
        n_images=result.features.num_images,
        skipped=[f"{s.path.name}: {s.reason}" for s in skipped],
        layers=[
            {
                "name": lp.geometry.name,
                "patterns": lp.num_patterns,
                "explained_share": lp.explained_share,
            }
            for lp in result.graph.layers
        ],
        n_edges=len(rows.parents),
        n_fires=len(rows.fires),
        seconds=0.0,
        skipped_file=record_skipped(Path(request.cache_dir), plan.model_id, skipped),
    )


__all__ = ["record_skipped", "skipped_file_path", "write_result"]
