"""Mining end to end, without the store: features → learned graph → the firings worth keeping.

This is what ``explgraph mine`` runs before it writes the result into a graph store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.images import from_crop_coords
from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from miner.firings import Firings, FiringSelector
from miner.graph import ExplanatoryGraph, GraphSettings, distributed, infer_graph, learn_graph
from miner.models.loading import resolve_device
from miner.models.spec import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class MiningResult:
    """A learned graph with the features it was learned on and its selected firings."""

    model: LoadedModel
    features: FeatureSet
    graph: ExplanatoryGraph
    firings: list[Firings]  # per layer, bottom→top; x, y in original-image pixels


def extraction_threads(threads: int, world_size: int) -> int:
    """CPU threads for rank 0's feature extraction: every rank's threads (the others wait at a
    barrier meanwhile), at most the machine's cores."""
    return max(1, min(threads * world_size, os.cpu_count() or 1))


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _shared_features(
    model: LoadedModel,
    records: Sequence[ImageRecord],
    layers: Sequence[str],
    *,
    settings: GraphSettings,
    cache_dir: Path,
    device: str,
    batch_size: int,
    background: Sequence[ImageRecord] | None,
    min_box: int,
    progress: Progress,
) -> FeatureSet:
    """The features every rank learns from: rank 0 fills the cache (with every rank's CPU
    threads) while the others wait at a barrier, then they read it."""
    rank, world_size = distributed.world()
    if rank != 0:
        log.debug("rank %d waits for rank 0 to fill the feature cache", rank)
        distributed.barrier()
    with _torch_threads(extraction_threads(torch.get_num_threads(), world_size)):
        features = extract_features(
            model,
            records,
            layers,
            cache_dir=cache_dir / "features",
            device=device,
            batch_size=batch_size,
            mirror=settings.use_flip,
            background=background,
            min_box=min_box,
            progress=progress,
        )
    if rank == 0:
        distributed.barrier()
    if features.num_images < 2:
        raise InputError(
            f"only {features.num_images} usable image(s) after skipping "
            f"{len(features.skipped)}: mining needs a few dozen images of the category"
        )
    return features


def _learn_and_select(
    features: FeatureSet,
    model: LoadedModel,
    settings: GraphSettings,
    *,
    cache_dir: Path,
    device: str,
    fires: tuple[int, int],
    progress: Progress,
) -> tuple[ExplanatoryGraph, list[Firings]]:
    """The graph (checkpointed per layer below ``cache_dir``) and, on rank 0 only, its firings
    (``fires``: per image, per pattern); the other ranks get no firings."""
    compute = resolve_device(device)
    graph = learn_graph(
        features,
        settings,
        device=compute,
        progress=progress,
        checkpoint_dir=str(cache_dir / "graphs"),
        key=features.key,
    )
    if distributed.world()[0] != 0:  # rank 0 alone infers the firings and writes
        return graph, []
    firings = select_firings(
        graph,
        features,
        input_size=model.input_size,
        device=compute,
        per_image=fires[0],
        per_pattern=fires[1],
        progress=progress,
    )
    return graph, firings


def mine_graph(
    model: LoadedModel,
    records: Sequence[ImageRecord],
    layers: Sequence[str],
    *,
    settings: GraphSettings,
    cache_dir: Path,
    device: str = "auto",
    batch_size: int = 32,
    background: Sequence[ImageRecord] | None = None,
    min_box: int = 50,
    fires_per_image: int = 20,
    fires_per_pattern: int = 20,
    progress: Progress = NULL_PROGRESS,
) -> MiningResult:
    """Extract features (cached), learn the graph (checkpointed per layer), select firings.

    Under ``torch.distributed`` (e.g. ``torchrun``) every rank calls this: rank 0 extracts the
    features first (with every rank's CPU threads, see :func:`extraction_threads`), all ranks
    learn on their shard of the images, and only rank 0 selects the firings (the other ranks get
    an empty ``firings`` list).

    Args:
        model, records, layers: the CNN, training images of one object category, and the
            selected layers (bottom→top, as node names).
        settings: graph-learning parameters (docs/method.md defaults).
        cache_dir: feature cache and learning checkpoints live below it; a re-run reuses both.
        device: ``auto``, ``cpu`` or ``cuda[:N]``; batch_size: images per forward pass.
        background: images without the object, for the normalisation (docs/method.md §2).
        min_box: objects smaller than this many pixels are skipped (docs/method.md §1).
        fires_per_image, fires_per_pattern: firings stored per image and layer (the image's
            best patterns) and per pattern (the pattern's best images).
        progress: progress bars.
    """
    features = _shared_features(
        model,
        records,
        layers,
        settings=settings,
        cache_dir=cache_dir,
        device=device,
        batch_size=batch_size,
        background=background,
        min_box=min_box,
        progress=progress,
    )
    graph, firings = _learn_and_select(
        features,
        model,
        settings,
        cache_dir=cache_dir,
        device=device,
        fires=(fires_per_image, fires_per_pattern),
        progress=progress,
    )
    return MiningResult(model=model, features=features, graph=graph, firings=firings)


def select_firings(
    graph: ExplanatoryGraph,
    features: FeatureSet,
    *,
    input_size: int,
    device: str | torch.device = "cpu",
    per_image: int = 20,
    per_pattern: int = 20,
    progress: Progress = NULL_PROGRESS,
) -> list[Firings]:
    """Infer the graph on its training images (in the orientation learning chose) and keep, per
    layer, each image's best patterns and each pattern's best images, in original-image pixels."""
    selectors = [FiringSelector(lp.num_patterns, per_image, per_pattern) for lp in graph.layers]
    step = graph.settings.chunk_size
    with progress.task("inferring firings", features.num_images) as bar:
        for start in range(0, features.num_images, step):
            stop = min(start + step, features.num_images)
            flipped = graph.flips[start:stop] if features.mirrored else False
            inference = infer_graph(graph, features, start, stop, device=device, flipped=flipped)
            for index, selector in enumerate(selectors):
                selector.add(inference.pixels(index, input_size), inference.layers[index].score)
            bar.advance(stop - start)
    return [
        _to_image_pixels(selector.result(), features.records, input_size) for selector in selectors
    ]


def _to_image_pixels(firings: Firings, records: Sequence[ImageRecord], size: int) -> Firings:
    """Crop pixels → original-image pixels, image by image (boxes differ per image)."""
    if firings.image.numel() == 0:
        return firings
    boxes = np.array(
        [rec.box if rec.box is not None else (np.nan,) * 4 for rec in records], dtype=np.float64
    )
    box = boxes[firings.image.numpy()]
    crop = np.stack([firings.x.numpy(), firings.y.numpy()], axis=-1).astype(np.float64)
    has_box = ~np.isnan(box).any(axis=1)
    out = crop.copy()
    if has_box.any():
        b = box[has_box]
        scale = np.stack([(b[:, 2] - b[:, 0]) / size, (b[:, 3] - b[:, 1]) / size], axis=-1)
        out[has_box] = crop[has_box] * scale + b[:, :2]
    if (~has_box).any():
        out[~has_box] = _whole_image_pixels(crop[~has_box], firings.image[~has_box], records, size)
    return Firings(
        image=firings.image,
        pattern=firings.pattern,
        x=torch.from_numpy(out[:, 0]).float(),
        y=torch.from_numpy(out[:, 1]).float(),
        score=firings.score,
        rank=firings.rank,
    )


def _whole_image_pixels(
    crop: np.ndarray, images: torch.Tensor, records: Sequence[ImageRecord], size: int
) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(crop)
    sizes: dict[int, tuple[int, int]] = {}
    for row, image in enumerate(images.tolist()):  # only images without a box: rare
        if image not in sizes:
            with Image.open(records[image].path) as handle:
                sizes[image] = handle.size
        width, height = sizes[image]
        out[row] = from_crop_coords(crop[row], (0.0, 0.0, float(width), float(height)), size)
    return out


__all__ = ["MiningResult", "mine_graph", "select_firings"]
