"""``explgraph evaluate stability``: location instability of a stored graph vs raw filters.

The graph is read back from the store, its CNN re-loaded from the model's recorded source, and
both are run on annotated images (the feature cache makes a second run cheap). In the same run,
two controls keep the figure honest (issue #4): the patterns at their initialisation (same
windows, no EM, no parents) and, for the layers below the top, patterns learned without parents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explgraph.errors import InputError
from explgraph.progress import NULL_PROGRESS, Progress
from graphstore.api import GraphStore
from miner.data.records import ImageRecord
from miner.features import extract_features
from miner.graph import ExplanatoryGraph, FeatureSource, infer_graph, learn_graph
from miner.models.loading import resolve_device
from queries.graphs import load_graph, load_stored_model
from queries.normalisation import TrainingNormalised, mined_features, training_records
from queries.stability import filter_argmax_positions, layer_instability


@dataclass
class StabilityReport:
    """Per-layer and overall instability of patterns, raw filters and the controls."""

    model_id: str
    n_images: int
    landmarks: list[str]
    top_k: int
    per_layer: list[dict[str, Any]] = field(default_factory=list)

    def _overall(self, key: str, layers: Sequence[dict[str, Any]] | None = None) -> float:
        values = [row[key] for row in (layers or self.per_layer) if row.get(key) is not None]
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``--json``."""
        patterns = self._overall("patterns")
        filters = self._overall("filters")
        lower = self.per_layer[:-1]
        no_parents = self._overall("no_parents", lower) if lower else float("nan")
        with_parents_lower = self._overall("patterns", lower) if lower else float("nan")
        initialisation = self._overall("initialisation")
        return {
            "model_id": self.model_id,
            "n_images": self.n_images,
            "landmarks": self.landmarks,
            "top_k": self.top_k,
            "patterns_instability": patterns,
            "filters_instability": filters,
            "ratio": patterns / filters if filters else float("nan"),
            "per_layer": self.per_layer,
            "controls": {
                "initialisation": initialisation,
                "learning_gain_over_initialisation": initialisation - patterns,
                "no_parents_lower_layers": no_parents,
                "with_parents_lower_layers": with_parents_lower,
                "parents_gain_lower_layers": no_parents - with_parents_lower,
            },
        }


def _landmarks(
    records: Sequence[ImageRecord], names: Sequence[str], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Landmarks in model-input (crop) pixels ``[N, J, 2]`` and visibility ``[N, J]``."""
    from miner.data.images import full_box, load_image, to_crop_coords

    points = np.zeros((len(records), len(names), 2))
    shown = np.zeros((len(records), len(names)), dtype=bool)
    for i, record in enumerate(records):  # one small dict per image: not a hot loop
        box = record.box if record.box is not None else full_box(load_image(record.path))
        for j, name in enumerate(names):
            keypoint = record.parts.get(name)
            if keypoint is not None and keypoint.visible:
                points[i, j] = to_crop_coords(np.array([keypoint.x, keypoint.y]), box, size)
                shown[i, j] = True
    return torch.from_numpy(points).float(), torch.from_numpy(shown)


def _pattern_positions(
    graph: ExplanatoryGraph,
    features: FeatureSource,
    input_size: int,
    device: torch.device,
    flipped: bool | None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: positions ``[N, P, 2]`` (crop pixels, original orientation) and scores."""
    out: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in graph.layers]
    step = graph.settings.chunk_size
    for start in range(0, features.num_images, step):
        stop = min(start + step, features.num_images)
        inference = infer_graph(graph, features, start, stop, device=device, flipped=flipped)
        for index in range(len(graph.layers)):
            out[index].append((inference.pixels(index, input_size), inference.layers[index].score))
    return [(torch.cat([p for p, _ in rows]), torch.cat([s for _, s in rows])) for rows in out]


def _filter_positions(features: FeatureSource, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    geometry = features.layers[layer]
    positions, scores = [], []
    for start in range(0, features.num_images, 64):
        stop = min(start + 64, features.num_images)
        p, s = filter_argmax_positions(
            features.chunk(layer, start, stop), geometry.stride, geometry.rf_offset
        )
        positions.append(p)
        scores.append(s)
    return torch.cat(positions), torch.cat(scores)


def evaluate_stability(
    store: GraphStore,
    model_id: str,
    records: Sequence[ImageRecord],
    *,
    cache_dir: Path,
    device: str = "cpu",
    top_k: int = 20,
    n_top: int | None = None,
    controls: bool = True,
    progress: Progress = NULL_PROGRESS,
) -> StabilityReport:
    """Instability of the stored graph's patterns, the raw filters and the controls.

    Args:
        store: where the model lives.
        model_id: the mined model.
        records: annotated images (part keypoints) of the model's category.
        cache_dir: feature cache and the controls' learning checkpoints.
        device: where to compute.
        top_k: top images per pattern (docs/method.md §7.1 default 20).
        n_top: patterns averaged per layer; default the layer's number of filters, so graph
            nodes and raw filters are compared on the same count.
        controls: also learn and score the two controls.
    """
    stored = load_graph(store, model_id)
    names = sorted({name for record in records for name in record.visible_parts()})
    if not names:
        raise InputError(
            "the annotations have no visible part keypoints: stability needs landmarks"
        )
    model = load_stored_model(stored)
    input_size = int(model.input_size)
    compute = resolve_device(device)
    features = extract_features(
        model,
        records,
        stored.layer_names,
        cache_dir=cache_dir / "features",
        device=str(compute),
        mirror=stored.graph.settings.use_flip,
        progress=progress,
    )
    # the patterns were learned on mass normalised by the mining images' statistics
    mined = mined_features(stored, cache_dir) or extract_features(
        model,
        training_records(stored),
        stored.layer_names,
        cache_dir=cache_dir / "features",
        device=str(compute),
        mirror=stored.graph.settings.use_flip,
        progress=progress,
    )
    source = TrainingNormalised(features, [mined.std(i) for i in range(len(mined.layers))])
    landmarks, visible = _landmarks(features.records, names, input_size)
    diagonal = float(input_size) * float(np.sqrt(2.0))
    report = StabilityReport(model_id, features.num_images, names, top_k)

    graphs: dict[str, ExplanatoryGraph] = {"patterns": stored.graph}
    if controls:
        base = stored.graph.settings
        for name, change in (
            ("initialisation", {"iterations": 0}),
            ("no_parents", {"use_parents": False}),
        ):
            graphs[name] = learn_graph(
                mined,
                dataclasses.replace(base, **change),
                device=compute,
                progress=progress,
                checkpoint_dir=str(cache_dir / "graphs"),
                key=mined.key,
            )
    positions = {
        name: _pattern_positions(graph, source, input_size, compute, None)
        for name, graph in graphs.items()
    }
    top = len(stored.graph.layers) - 1
    for index, layer in enumerate(stored.graph.layers):
        count = n_top or layer.geometry.channels
        row: dict[str, Any] = {"layer": layer.geometry.name, "n_top": count}
        for name, per_layer in positions.items():
            if name == "no_parents" and index == top:
                row[name] = None  # the top layer has no parents either way
                continue
            pos, score = per_layer[index]
            row[name] = layer_instability(
                pos, score, landmarks, visible, diagonal=diagonal, n_top=count, top_k=top_k
            ).mean
        fpos, fscore = _filter_positions(source, index)
        row["filters"] = layer_instability(
            fpos, fscore, landmarks, visible, diagonal=diagonal, n_top=count, top_k=top_k
        ).mean
        row["ratio"] = row["patterns"] / row["filters"] if row["filters"] else float("nan")
        report.per_layer.append(row)
    return report


__all__ = ["StabilityReport", "evaluate_stability"]
