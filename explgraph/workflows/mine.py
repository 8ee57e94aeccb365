"""The ``mine`` workflow: wire model, data, miner and store together, resumable and idempotent.

A re-run with the same inputs finds the stored model (same run digest) and stops; an interrupted
run reuses the feature cache and the per-layer learning checkpoints. The model is marked
``mining`` while it is written and ``complete`` only at the end.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explgraph.core.errors import InputError, UnknownModel
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore.settings import StoreSettings


@dataclass
class MineRequest:
    """Everything ``explgraph mine`` was asked to do."""

    model: str
    images: Path
    cache_dir: Path
    weights: str | None = None
    annotations: Path | None = None
    layers: list[str] | None = None
    label: str | None = None
    split: str | None = "train"
    max_images: int | None = None
    background: Path | None = None
    model_id: str | None = None
    device: str = "auto"
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    fires_per_image: int = 20
    fires_per_pattern: int = 20
    force: bool = False
    boxes: str = "clip"  # boxes past the image border: clip them, or refuse (skip) the image
    allow_outside_root: bool = False  # annotation paths may leave the image root
    max_memory: str | None = None  # refuse to start above this estimate ("8G"; None: free RAM)


@dataclass
class MineSummary:
    """What a mine run did, for the CLI and the demo."""

    model_id: str
    reused: bool
    n_images: int
    skipped: list[str]
    layers: list[dict[str, Any]]
    n_edges: int
    n_fires: int
    seconds: float
    skipped_file: Path | None = None  # every skipped image with its reason, one per line

    def text(self) -> str:
        """A few human lines."""
        if self.reused:
            return (
                f"model {self.model_id} is already in the store with the same inputs and "
                "parameters; nothing to do (use --force to mine it again)"
            )
        lines = [
            f"mined {self.model_id} on {self.n_images} images in {self.seconds:.0f} s"
            + (
                f" ({len(self.skipped)} skipped: {', '.join(self.skipped[:3])}"
                + (f", ... all listed in {self.skipped_file})" if self.skipped_file else ")")
                if self.skipped
                else ""
            )
        ]
        for row in self.layers:
            lines.append(
                f"  {row['name']:>12}: {row['patterns']:>6} patterns, "
                f"explained share {row['explained_share']:.1%}"
            )
        lines.append(f"  {self.n_edges} PARENT edges, {self.n_fires} FIRES edges")
        return "\n".join(lines)


def run_digest(request: MineRequest, fingerprint: str, layers: list[str], image_key: str) -> str:
    """Identity of a mining run: same digest, same stored result."""
    payload = {
        "fingerprint": fingerprint,
        "layers": layers,
        "images": image_key,
        "settings": request.settings_overrides,
        "fires": [request.fires_per_image, request.fires_per_pattern],
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def select_records(request: MineRequest) -> tuple[Any, list[Any]]:
    """The dataset and the records to mine, after label, split and count filters."""
    from miner.data.folder import load_dataset

    dataset = load_dataset(
        request.images, request.annotations, allow_outside_root=request.allow_outside_root
    )
    chosen = dataset.select(split=request.split, label=request.label)
    if len(chosen) == 0:
        labels = sorted({r.label for r in dataset.records if r.label})
        splits = sorted({r.split for r in dataset.records if r.split})
        raise InputError(
            f"no images in {request.images} match label={request.label!r} split={request.split!r};"
            f" labels there: {labels or 'none'}, splits: {splits or 'none'}"
        )
    records = list(chosen.records)
    if request.max_images is not None:
        records = records[: request.max_images]
    return dataset, records


def run_mine(
    request: MineRequest,
    store_spec: str,
    *,
    store_settings: StoreSettings | None = None,
    progress: Progress = NULL_PROGRESS,
) -> MineSummary:
    """Mine ``request.model`` on the images and write the graph into the store at ``store_spec``
    (opened with ``store_settings``: Bolt credentials)."""
    from graphstore import open_store
    from miner.data.boxes import SkippedImage, fit_boxes
    from miner.graph import GraphSettings, distributed
    from miner.mining import mine_graph
    from miner.models import load_model, resolve_layers
    from queries.graphs import graph_records

    started = time.perf_counter()
    rank, _ = distributed.world()
    if rank == 0:  # open the store first: an unreachable server should fail before the work
        with open_store(store_spec, settings=store_settings) as store:
            store.ensure_schema()
    distributed.barrier()
    # A checkpoint is recorded by absolute path so the stored graph can reload its CNN anywhere.
    # The inputs first: a bad annotation file fails before weights are loaded or downloaded.
    dataset, records = select_records(request)
    fitted = fit_boxes(records, request.boxes)  # clipped boxes are part of the run's identity
    records = fitted.records
    spec = str(Path(request.model).resolve()) if Path(request.model).is_file() else request.model
    loaded = load_model(spec, request.weights, device="cpu")
    layers = resolve_layers(loaded, request.layers)
    model_id = request.model_id or (
        f"{loaded.name}-{request.label}" if request.label else loaded.name
    )
    settings = GraphSettings.from_dict({**GraphSettings().to_dict(), **request.settings_overrides})
    _check_memory(loaded, layers, len(records), settings, request)
    image_key = hashlib.sha1("\n".join(f"{r.path}|{r.box}" for r in records).encode()).hexdigest()
    digest = run_digest(request, loaded.fingerprint, layers, image_key)
    stored = not request.force and _already_stored(store_spec, store_settings, model_id, digest)
    if stored:
        return MineSummary(model_id, True, len(records), [], [], 0, 0, 0.0)
    result = mine_graph(
        loaded,
        records,
        layers,
        settings=settings,
        cache_dir=Path(request.cache_dir),
        device=request.device,
        batch_size=request.batch_size,
        background=_background(request.background),
        fires_per_image=request.fires_per_image,
        fires_per_pattern=request.fires_per_pattern,
        progress=progress,
    )
    if rank != 0:
        return MineSummary(model_id, False, result.features.num_images, [], [], 0, 0, 0.0)
    records_out = graph_records(
        result,
        model_id,
        dataset=dataset.name,
        extra_params={
            "run_digest": digest,
            "weights_arg": request.weights,
            "label": request.label,
            "split": request.split,
            "images": str(request.images),
            "annotations": str(request.annotations) if request.annotations else None,
            "requested_layers": request.layers,
        },
    )
    fault_point("mine.write")
    with open_store(store_spec, settings=store_settings) as store:
        store.write_model(records_out, progress=progress)
    skipped = fitted.skipped + [SkippedImage(s.path, s.reason) for s in result.features.skipped]
    skipped_file = _record_skipped(Path(request.cache_dir), model_id, skipped)
    layer_rows = [
        {
            "name": lp.geometry.name,
            "patterns": lp.num_patterns,
            "explained_share": lp.explained_share,
        }
        for lp in result.graph.layers
    ]
    return MineSummary(
        model_id=model_id,
        reused=False,
        n_images=result.features.num_images,
        skipped=[f"{s.path.name}: {s.reason}" for s in skipped],
        layers=layer_rows,
        n_edges=len(records_out.parents),
        n_fires=len(records_out.fires),
        seconds=time.perf_counter() - started,
        skipped_file=skipped_file,
    )


def skipped_file_path(cache_dir: Path, model_id: str) -> Path:
    """Where a mine run lists its skipped images: ``<cache>/runs/<model id>/skipped.txt``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return cache_dir / "runs" / safe / "skipped.txt"


def _record_skipped(cache_dir: Path, model_id: str, skipped: list[Any]) -> Path | None:
    """Write (or, when nothing was skipped, remove) the run's ``skipped.txt``."""
    from miner.data.boxes import write_skipped

    path = skipped_file_path(cache_dir, model_id)
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    return write_skipped(path, skipped)


def _check_memory(
    loaded: Any, layers: list[str], n_images: int, settings: Any, request: MineRequest
) -> None:
    """Refuse, before any work, a run whose estimated memory or cache size does not fit."""
    from miner.memory import check_mining_fits, estimate_mining, parse_bytes
    from miner.models.geometry import layer_geometry

    estimate = estimate_mining(
        layer_geometry(loaded, layers),
        n_images=n_images,
        settings=settings,
        batch_size=request.batch_size,
    )
    limit = parse_bytes(request.max_memory) if request.max_memory else None
    check_mining_fits(estimate, max_memory=limit, cache_dir=Path(request.cache_dir))


def _already_stored(
    store_spec: str, store_settings: StoreSettings | None, model_id: str, digest: str
) -> bool:
    from graphstore import open_store

    with open_store(store_spec, read_only=True, settings=store_settings) as store:
        try:
            described = store.describe_model(model_id)
        except UnknownModel:
            return False
    if described.get("status") != "complete":
        return False
    params = described["params"]
    return bool(params.get("run_digest") == digest)


def _background(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    from miner.data.folder import load_dataset

    return list(load_dataset(path).records)


__all__ = ["MineRequest", "MineSummary", "run_mine", "select_records"]
