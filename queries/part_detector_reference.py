"""What the signed instability metric allows: a perfect part detector as a reference.

The signed metric of docs/method.md §7.3 averages, per pattern, the spread of the offset
landmark − position over *every* landmark, on the pattern's own top images. A detector that sits
exactly on one annotated landmark in every image (the landmark that suits the pattern best)
still pays the spread of every other landmark relative to that one: with large rotation and
articulation that can be as large as the spread of the landmarks themselves over the same
images, which is what the "frozen at prior μ" control scores. This module scores that perfect
detector on the very patterns and images the frozen-prior control uses, so a target such as
"patterns ≤ 0.8 × frozen at μ" can be checked against what any single-part detector could reach.

It reads the test annotations (every landmark's position, occluded ones included) and is a
reference, never a method or a control a detector could pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.records import ImageRecord
from miner.graph import ExplanatoryGraph, FeatureSource, infer_graph
from queries.landmarks import annotated_points, landmark_names
from queries.loaded import LoadedGraph
from queries.stability import TopKAccumulator


class PerfectDetectorAccumulator:
    """Signed instability of the patterns, of the patterns frozen at μ, and of a detector on
    each landmark, all over each pattern's top images, streamed over chunks of images."""

    def __init__(self, n_patterns: int, n_landmarks: int, top_k: int = 20) -> None:
        self.patterns = TopKAccumulator(n_patterns, n_landmarks, top_k)
        self.frozen = TopKAccumulator(n_patterns, n_landmarks, top_k)
        self.on_landmark = [
            TopKAccumulator(n_patterns, n_landmarks, top_k) for _ in range(n_landmarks)
        ]

    def add(
        self,
        positions: torch.Tensor,
        frozen: torch.Tensor,
        scores: torch.Tensor,
        points: torch.Tensor,
        visible: torch.Tensor,
        known: torch.Tensor,
        flipped: torch.Tensor,
    ) -> None:
        """A chunk of ``n`` images: ``positions``/``frozen`` ``[n, P, 2]`` (original frame),
        ``scores [n, P]``, ``points [n, J, 2]``, ``visible``/``known [n, J]`` (see
        :func:`annotated_points`), ``flipped [n]``. The detector on landmark m sits on it
        whether or not it is occluded, in the images where it is annotated."""
        n, p, _ = positions.shape
        self.patterns.add(positions, scores, points, visible, flipped)
        self.frozen.add(frozen, scores, points, visible, flipped)
        for m, acc in enumerate(self.on_landmark):
            on = points[:, m, None, :].expand(n, p, 2)
            acc.add(on, scores, points, visible & known[:, m, None], flipped)

    def layer_means(self, n_top: int, *, diagonal: float) -> dict[str, float]:
        """Means over the ``n_top`` best-ranked patterns (the graph's ranking, as for the
        frozen-prior control) of the three signed instabilities; the detector takes, per
        pattern, the landmark it would sit on best."""
        order = self.patterns.ranking()
        per = {
            "patterns": self.patterns.per_pattern(diagonal=diagonal, signed=True),
            "frozen_prior": self.frozen.per_pattern(diagonal=diagonal, signed=True),
            "perfect_part_detector": torch.stack(
                [a.per_pattern(diagonal=diagonal, signed=True) for a in self.on_landmark]
            )
            .nan_to_num(nan=float("inf"))
            .amin(dim=0),
        }
        measurable = ~per["patterns"].isnan() & ~per["perfect_part_detector"].isinf()
        ranked = order[measurable[order]][:n_top]
        return {
            name: float(values[ranked].mean()) if ranked.numel() else float("nan")
            for name, values in per.items()
        }


def perfect_detector_report(
    graph: ExplanatoryGraph,
    source: FeatureSource,
    points: torch.Tensor,
    visible: torch.Tensor,
    known: torch.Tensor,
    *,
    input_size: int,
    device: torch.device,
    top_k: int = 20,
    progress: Progress = NULL_PROGRESS,
) -> dict[str, Any]:
    """Per layer and overall (mean over layers) signed instability of the patterns, the patterns
    frozen at μ and the perfect part detector, on the same patterns and images."""
    layers = graph.layers
    acc = [PerfectDetectorAccumulator(lp.num_patterns, points.shape[1], top_k) for lp in layers]
    prior_px = [lp.geometry.to_pixels(lp.mu.float().cpu()) for lp in layers]
    step = graph.settings.chunk_size
    with progress.task("perfect part detector reference", source.num_images) as bar:
        for start in range(0, source.num_images, step):
            stop = min(start + step, source.num_images)
            inference = infer_graph(graph, source, start, stop, device=device)
            flips = inference.flipped.cpu().to(torch.bool)
            for index, layer_acc in enumerate(acc):
                prior = prior_px[index][None].expand(stop - start, -1, -1)
                frozen_x = torch.where(flips[:, None], input_size - prior[..., 0], prior[..., 0])
                layer_acc.add(
                    inference.pixels(index, input_size),
                    torch.stack([frozen_x, prior[..., 1]], dim=-1),
                    inference.layers[index].score,
                    points[start:stop],
                    visible[start:stop],
                    known[start:stop],
                    flips,
                )
            bar.advance(stop - start)
    diagonal = float(input_size) * math.sqrt(2.0)
    per_layer = []
    for lp, layer_acc in zip(layers, acc, strict=True):
        row: dict[str, Any] = {"layer": lp.geometry.name}
        row.update(layer_acc.layer_means(lp.geometry.channels, diagonal=diagonal))
        per_layer.append(row)
    names = ("patterns", "frozen_prior", "perfect_part_detector")
    signed = {name: float(np.mean([row[name] for row in per_layer])) for name in names}
    return {
        "signed": signed,
        "perfect_over_frozen": signed["perfect_part_detector"] / signed["frozen_prior"],
        "per_layer": per_layer,
    }


def perfect_detector_reference(
    loaded: LoadedGraph,
    records: Sequence[ImageRecord],
    *,
    top_k: int = 20,
    progress: Progress = NULL_PROGRESS,
) -> dict[str, Any]:
    """:func:`perfect_detector_report` of a stored graph on annotated images (as
    ``evaluate stability`` reads them: features normalised by the mining images' statistics,
    extracted again when their cache is gone)."""
    names = landmark_names(records, needed_by="the reference")
    features = loaded.extract(records, progress=progress)
    statistics = loaded.mining_statistics()
    source = loaded.normalised(features, statistics)
    points, visible, known = annotated_points(features.records, names, loaded.input_size)
    report = perfect_detector_report(
        loaded.graph,
        source,
        points,
        visible,
        known,
        input_size=loaded.input_size,
        device=loaded.device,
        top_k=top_k,
        progress=progress,
    )
    report["landmarks"] = list(names)
    return report


__all__ = [
    "PerfectDetectorAccumulator",
    "perfect_detector_reference",
    "perfect_detector_report",
]
