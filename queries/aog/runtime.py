"""Running a stored graph on prepared images: positions and confidences of every pattern.

The images come from :meth:`queries.loaded.LoadedGraph.prepare_images` (features normalised by
the mining statistics); inference reads them plain, mirrored, or in the orientation the graph
explains better, batched over the images of a range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from explgraph.core.errors import InputError
from miner.graph import ExplanatoryGraph, FeatureSource, infer_graph

ORIENTATIONS = {"plain": False, "mirror": True, "auto": None}


@dataclass
class GraphRun:
    """Pattern positions and confidences of one image range in one orientation."""

    pixels: list[torch.Tensor]  # per layer [n, P, 2] crop px, frame of the orientation read
    confidence: list[torch.Tensor]  # per layer [n, P] score / the pattern's mean training score
    flipped: torch.Tensor  # [n] bool: whether each image was read mirrored
    seconds: float
    top_soft: torch.Tensor | None = None  # [n, P] top-layer soft scores: the flip criterion


def run_graph(
    graph: ExplanatoryGraph,
    features: FeatureSource,
    start: int,
    stop: int,
    *,
    orientation: str = "plain",
    device: str | torch.device = "cpu",
) -> GraphRun:
    """Infer ``graph`` on images ``start:stop`` read plain, mirrored or either (auto).

    Positions stay in the frame of the orientation each image was read in (a mirrored image's
    ``x`` counts from the mirrored crop's left edge).
    """
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation {orientation!r}: use one of {', '.join(ORIENTATIONS)}")
    started = time.perf_counter()
    inference = infer_graph(
        graph, features, start, stop, device=device, flipped=ORIENTATIONS[orientation]
    )
    pixels, confidence = [], []
    for index, layer in enumerate(graph.layers):
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


def run_both(
    graph: ExplanatoryGraph,
    features: FeatureSource,
    start: int,
    stop: int,
    *,
    device: str | torch.device = "cpu",
) -> dict[bool, GraphRun]:
    """The graph inferred on images ``start:stop`` plain (``False``) and mirrored (``True``)."""
    return {
        mirrored: run_graph(
            graph,
            features,
            start,
            stop,
            orientation="mirror" if mirrored else "plain",
            device=device,
        )
        for mirrored in (False, True)
    }


__all__ = ["ORIENTATIONS", "GraphRun", "run_both", "run_graph"]
