"""Before any work: the records to mine, the CNN and its layers, the settings, the run's identity.

Everything that can refuse a run (no matching images, a bad annotation file, a run that will not
fit in memory or on disk) refuses here, before features are extracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from explgraph.core.errors import InputError
from explgraph.workflows.mine.digest import image_key, run_digest
from explgraph.workflows.mine.request import MineRequest
from miner.data.boxes import SkippedImage, fit_boxes
from miner.data.folder import load_dataset
from miner.data.records import Dataset, ImageRecord
from miner.graph import GraphSettings
from miner.memory import check_mining_fits, estimate_mining, parse_bytes
from miner.models import load_model, resolve_layers
from miner.models.geometry import layer_geometry
from miner.models.spec import LoadedModel


@dataclass
class MinePlan:
    """A request resolved: what will be mined, under which id and run digest."""

    dataset_name: str
    records: list[ImageRecord]  # boxes fitted to their images
    box_skipped: list[SkippedImage]  # images left out because of their boxes
    model: LoadedModel  # on the CPU; the mining call moves it
    layers: list[str]
    model_id: str
    settings: GraphSettings
    digest: str
    notes: list[str]  # what the run chose that the user did not ask for, one line each


def split_to_mine(dataset: Dataset, request: MineRequest) -> tuple[str | None, list[str]]:
    """The split to select and what to tell the user: data without splits (a plain image
    folder) is mined whole, whatever ``--split`` says, and the run says so in one line."""
    if request.split is None or dataset.splits:
        return request.split, []
    return None, [
        f"{request.images} has no splits (no annotation file assigns them): mining all its "
        f"images{f' labelled {request.label!r}' if request.label else ''}, not only split "
        f"{request.split!r}"
    ]


def select_records(request: MineRequest) -> tuple[Dataset, list[ImageRecord]]:
    """The dataset and the records to mine, after label, split (see :func:`split_to_mine`) and
    count filters."""
    dataset = load_dataset(
        request.images, request.annotations, allow_outside_root=request.allow_outside_root
    )
    split, _ = split_to_mine(dataset, request)
    chosen = dataset.select(split=split, label=request.label)
    if len(chosen) == 0:
        labels = sorted({r.label for r in dataset.records if r.label})
        raise InputError(
            f"no images in {request.images} match label={request.label!r} split={split!r};"
            f" labels there: {labels or 'none'}, splits: {list(dataset.splits) or 'none'}"
        )
    records = list(chosen.records)
    if request.max_images is not None:
        records = records[: request.max_images]
    return dataset, records


def background_records(path: Path | None) -> list[ImageRecord] | None:
    """The background set's images (``None``: normalise by the images themselves)."""
    if path is None:
        return None
    return list(load_dataset(path).records)


def _check_memory(
    loaded: LoadedModel,
    layers: list[str],
    n_images: int,
    settings: GraphSettings,
    request: MineRequest,
) -> None:
    """Refuse, before any work, a run whose estimated memory or cache size does not fit."""
    estimate = estimate_mining(
        layer_geometry(loaded, layers),
        n_images=n_images,
        settings=settings,
        batch_size=request.batch_size,
    )
    limit = parse_bytes(request.max_memory) if request.max_memory else None
    check_mining_fits(estimate, max_memory=limit, cache_dir=Path(request.cache_dir))


def plan_run(request: MineRequest) -> MinePlan:
    """Resolve ``request``: the inputs first (a bad annotation file fails before weights are
    loaded or downloaded), then the CNN, its layers and the run digest."""
    dataset, records = select_records(request)
    fitted = fit_boxes(records, request.boxes)  # clipped boxes are part of the run's identity
    # A checkpoint is recorded by absolute path so the stored graph can reload its CNN anywhere.
    spec = str(Path(request.model).resolve()) if Path(request.model).is_file() else request.model
    loaded = load_model(spec, request.weights, device="cpu")
    layers = resolve_layers(loaded, request.layers)
    model_id = request.model_id or (
        f"{loaded.name}-{request.label}" if request.label else loaded.name
    )
    settings = GraphSettings.from_dict({**GraphSettings().to_dict(), **request.settings_overrides})
    _check_memory(loaded, layers, len(fitted.records), settings, request)
    digest = run_digest(request, loaded.fingerprint, layers, image_key(fitted.records))
    return MinePlan(
        dataset_name=dataset.name,
        records=fitted.records,
        box_skipped=fitted.skipped,
        model=loaded,
        layers=layers,
        model_id=model_id,
        settings=settings,
        digest=digest,
        notes=split_to_mine(dataset, request)[1],
    )


__all__ = ["MinePlan", "background_records", "plan_run", "select_records", "split_to_mine"]
