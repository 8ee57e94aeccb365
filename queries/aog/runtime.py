"""Running a stored graph on new images: features normalised as at mining, then inference.

New images (shots, test images) must be normalised by the per-unit std of the images the graph
was mined on (docs/method.md §2), not by their own: one image has no spread. The mined feature
cache entry (its key is recorded in the model's parameters) holds that std; the maps of the new
images are rescaled to it. If the entry is gone, the images normalise themselves and the result
says so (``normalisation == "self"``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.records import ImageRecord
from miner.features import extract_features
from miner.graph import infer_graph
from miner.models.loading import resolve_device
from miner.models.spec import LoadedModel
from queries.graphs import StoredGraph
from queries.normalisation import TrainingNormalised, mined_features

ORIENTATIONS = {"plain": False, "mirror": True, "auto": None}


def reference_std(stored: StoredGraph, cache_dir: Path) -> list[np.ndarray] | None:
    """The per-unit std the graph was mined with, from its feature cache entry (or ``None``)."""
    mined = mined_features(stored, cache_dir)
    return None if mined is None else [mined.std(i) for i in range(len(mined.layers))]


@dataclass
class PreparedImages:
    """Features of a list of images, and which of them were usable."""

    features: TrainingNormalised
    kept: list[int]  # index into the caller's records of every image the features hold
    skipped: dict[int, str] = field(default_factory=dict)  # index -> reason
    forward_s: float = 0.0


def prepare_images(
    stored: StoredGraph,
    model: LoadedModel,
    records: Sequence[ImageRecord],
    *,
    cache_dir: Path,
    device: str = "cpu",
    reference: list[np.ndarray] | None = None,
    progress: Progress = NULL_PROGRESS,
) -> PreparedImages:
    """Extract (or reuse) the mirrored-and-plain features of ``records`` at the graph's layers.

    Raises:
        InputError: none of the images is usable (unreadable, or object box too small).
    """
    started = time.perf_counter()
    features = extract_features(
        model,
        list(records),
        stored.layer_names,
        cache_dir=Path(cache_dir) / "features",
        device=device,
        mirror=True,
        min_box=1,
        progress=progress,
    )
    forward_s = time.perf_counter() - started
    kept = [int(image["index"]) for image in features.meta["images"]]
    skipped = {int(item["index"]): str(item["reason"]) for item in features.meta["skipped"]}
    if not kept:
        raise InputError("none of the images could be read; check the paths and boxes")
    if reference is None:  # the mined statistics are gone: the images normalise themselves
        source = TrainingNormalised(
            features, [features.std(i) for i in range(len(features.layers))], "self"
        )
    else:
        source = TrainingNormalised(features, reference)
    return PreparedImages(source, kept, skipped, forward_s)


@dataclass
class GraphRun:
    """Pattern positions and confidences of one image range in one orientation."""

    pixels: list[torch.Tensor]  # per layer [n, P, 2] crop px, frame of the orientation read
    confidence: list[torch.Tensor]  # per layer [n, P] score / the pattern's mean training score
    flipped: torch.Tensor  # [n] bool: whether each image was read mirrored
    seconds: float
    top_soft: torch.Tensor | None = None  # [n, P] top-layer soft scores: the flip criterion


def run_graph(
    stored: StoredGraph,
    features: TrainingNormalised,
    start: int,
    stop: int,
    *,
    orientation: str = "plain",
    device: str | torch.device = "cpu",
) -> GraphRun:
    """Infer the stored graph on images ``start:stop`` read plain, mirrored or either (auto).

    Positions stay in the frame of the orientation each image was read in (a mirrored image's
    ``x`` counts from the mirrored crop's left edge).
    """
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation {orientation!r}: use one of {', '.join(ORIENTATIONS)}")
    started = time.perf_counter()
    inference = infer_graph(
        stored.graph,
        features,
        start,
        stop,
        device=device,
        flipped=ORIENTATIONS[orientation],
    )
    pixels, confidence = [], []
    for index, layer in enumerate(stored.graph.layers):
        pixels.append(inference.pixels(index))
        mean = layer.mean_score.clamp(min=1e-12)
        confidence.append(inference.layers[index].score / mean[None, :])
    return GraphRun(
        pixels,
        confidence,
        inference.flipped,
        time.perf_counter() - started,
        inference.layers[-1].soft,
    )


__all__ = [
    "ORIENTATIONS",
    "GraphRun",
    "PreparedImages",
    "prepare_images",
    "reference_std",
    "resolve_device",
    "run_graph",
]
