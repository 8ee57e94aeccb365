"""``explgraph evaluate stability``: location instability of a stored graph and its controls.

The graph is read back from the store, its CNN re-loaded from the model's recorded source, and
both are run on annotated images (the feature cache makes a second run cheap). Every figure is
shown beside controls a trivial detector would pass (docs/method.md §7.3):

- fixed points: a point at the crop centre, and the best point of a grid (chosen per landmark on
  these very images: a lower bound for any static detector), read in the graph's orientation;
- frozen prior: every pattern at its prior μ (the graph's per-image mirror kept), i.e. the same
  images and scores with inference switched off;
- raw filters (arg-max unit), the patterns at initialisation and, for the layers below the top,
  patterns learned without parents (only the lower layers are relearned: the top layer and the
  per-image mirror choices are the stored graph's; cached like the mining checkpoints).

Each is measured with the paper's unsigned metric and the signed one (spread of the 2-D offset
landmark − position in the mirror-normalised frame), which a point that does not move with the
part cannot pass. Images are streamed: only the top-k images of each pattern are held.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.records import ImageRecord
from miner.features import FeatureSet
from miner.graph import ExplanatoryGraph, FeatureSource, GraphSettings, infer_graph, learn_graph
from miner.graph.checkpoint import LayerCheckpoints, run_digest
from miner.graph.inference import mixed_chunk
from miner.graph.types import FeatureView, LayerSlice
from queries.best_landmark import (
    BestLandmarks,
    best_landmarks,
    centre_landmarks,
    pooled,
    summarise,
)
from queries.landmarks import landmark_names, visible_landmarks
from queries.loaded import LoadedGraph
from queries.stability import (
    TopKAccumulator,
    filter_argmax_positions,
    fixed_point_grid,
    fixed_point_instability,
)

# detectors measured per layer, in table order; "fixed points" are per landmark, not per layer
DETECTORS = ("patterns", "frozen_prior", "filters", "initialisation", "no_parents")
FIXED_GRID_CELLS = 8


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


@dataclass
class StabilityReport:
    """Per-layer and overall instability of patterns and every control, unsigned and signed."""

    model_id: str
    n_images: int
    landmarks: list[str]
    top_k: int
    per_layer: list[dict[str, Any]] = field(default_factory=list)
    fixed: dict[str, float] = field(default_factory=dict)
    # signed spread to each pattern's best-tracked landmark (queries/best_landmark.py)
    best_landmark: dict[str, Any] = field(default_factory=dict)

    def overall(self, key: str, *, lower_only: bool = False) -> float:
        """Mean of a per-layer column over the layers (only those below the top if asked)."""
        rows = self.per_layer[:-1] if lower_only else self.per_layer
        return _mean([row.get(key) for row in rows])

    def verdicts(self) -> list[str]:
        """Plain sentences comparing the patterns with every control (lower is better)."""
        lines = []
        for metric, suffix in (("unsigned", ""), ("signed", "_signed")):
            ours = self.overall("patterns" + suffix)
            rivals = {
                "fixed point at the crop centre": self.fixed.get("centre" + suffix),
                "best fixed point on the grid": self.fixed.get("best" + suffix),
                "patterns frozen at their prior mu": self.overall("frozen_prior" + suffix),
                "raw filters": self.overall("filters" + suffix),
                "patterns at initialisation": self.overall("initialisation" + suffix),
            }
            for name, value in rivals.items():
                if value is None or math.isnan(value) or math.isnan(ours):
                    continue
                if ours < value:
                    lines.append(
                        f"{metric}: patterns {ours:.4f} beat {name} {value:.4f} "
                        f"(ratio {ours / value:.2f})"
                    )
                else:
                    lines.append(
                        f"{metric}: CONTROL WINS - {name} {value:.4f} is at least as stable as "
                        f"the patterns {ours:.4f} (ratio {ours / value:.2f})"
                    )
            lower = self.overall("patterns" + suffix, lower_only=True)
            none = self.overall("no_parents" + suffix, lower_only=True)
            if not (math.isnan(lower) or math.isnan(none)):
                word = "beat" if lower < none else "CONTROL WINS - do not beat"
                lines.append(
                    f"{metric}: lower layers with parents {lower:.4f} {word} without parents "
                    f"{none:.4f}"
                )
        return lines + self._best_landmark_verdicts()

    def _best_landmark_verdicts(self) -> list[str]:
        """Per group, the patterns at their best landmark against their frozen selves."""
        lines = []
        for group, row in self.best_landmark.get("overall", {}).items():
            if not row.get("n_patterns"):
                continue
            ours, frozen = row["patterns"], row["frozen_prior"]
            word = "beat" if ours < frozen else "CONTROL WINS - do not beat"
            lines.append(
                f"best landmark ({group.replace('_', '-')}, {row['n_patterns']} patterns): "
                f"patterns {ours:.4f} {word} frozen at mu {frozen:.4f} "
                f"(ratio {row['patterns_over_frozen']:.2f}; {row['beat_frozen']:.0%} of the "
                "patterns beat their frozen self)"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``--json``."""
        patterns = self.overall("patterns")
        filters = self.overall("filters")
        initialisation = self.overall("initialisation")
        with_parents_lower = self.overall("patterns", lower_only=True)
        no_parents = self.overall("no_parents", lower_only=True)
        signed = {name: self.overall(name + "_signed") for name in DETECTORS}
        signed["no_parents"] = self.overall("no_parents_signed", lower_only=True)
        signed["patterns_lower_layers"] = self.overall("patterns_signed", lower_only=True)
        return {
            "model_id": self.model_id,
            "n_images": self.n_images,
            "landmarks": self.landmarks,
            "top_k": self.top_k,
            "patterns_instability": patterns,
            "filters_instability": filters,
            "ratio": patterns / filters if filters else float("nan"),
            "signed": signed,
            "per_layer": self.per_layer,
            "fixed_points": dict(self.fixed),
            "best_landmark": self.best_landmark,
            "controls": {
                "initialisation": initialisation,
                "frozen_prior": self.overall("frozen_prior"),
                "fixed_centre": self.fixed.get("centre", float("nan")),
                "best_fixed_point": self.fixed.get("best", float("nan")),
                "learning_gain_over_initialisation": initialisation - patterns,
                "no_parents_lower_layers": no_parents,
                "with_parents_lower_layers": with_parents_lower,
                "parents_gain_lower_layers": no_parents - with_parents_lower,
            },
            "verdicts": self.verdicts(),
        }


class _ChunkMemo(FeatureView):
    """A feature source that reads each (layer, range, orientation) once per chunk of images.

    The graph and its controls are inferred on the same images one after the other; each pass
    reads (from the memory-mapped cache) and normalises the same maps. Held until
    :meth:`forget`, called when the next chunk of images starts, so memory stays one chunk.
    Callers must not change the returned maps in place (inference does not).
    """

    def __init__(self, features: FeatureSource) -> None:
        super().__init__(features)
        self._held: dict[tuple[int, int, int, bool, str], torch.Tensor] = {}

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """The source's chunk, read once until :meth:`forget`."""
        key = (layer, start, stop, bool(flipped), str(device))
        if key not in self._held:
            self._held[key] = super().chunk(layer, start, stop, flipped=flipped, device=device)
        return self._held[key]

    def forget(self) -> None:
        """Drop the maps held so far."""
        self._held.clear()


def _same_layer(a: Any, b: Any) -> bool:
    """Whether two layers of patterns hold the same parameters (tensors equal bit for bit)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def _lower_layers_only(control: ExplanatoryGraph, graph: ExplanatoryGraph) -> bool:
    """Whether ``control`` infers like ``graph`` at the top and, below, without the top.

    True for the no-parents control: its top layer is the graph's own (so its per-image mirror
    choice is the graph's too) and the layer below has no parents, so nothing below depends
    on the top layer's positions. Its lower layers can then be inferred alone, in the graph's
    orientation, and its top layer (never reported) not at all.
    """
    if len(control.layers) != len(graph.layers) or len(graph.layers) < 2:
        return False
    if control.settings.use_flip != graph.settings.use_flip:
        return False
    below = control.layers[-2]
    return bool((below.parents < 0).all()) and _same_layer(control.layers[-1], graph.layers[-1])


def no_parents_graph(
    graph: ExplanatoryGraph,
    mined: Any,
    *,
    device: torch.device,
    checkpoint_dir: Path,
    progress: Progress = NULL_PROGRESS,
) -> ExplanatoryGraph:
    """The control "lower layers learned without parents", sharing ``graph``'s top layer.

    The top layer learns the same way with or without parents, so it is not learned again: the
    stored top layer and its per-image mirror choices on the mined images seed the control's
    checkpoint folder, and only the layers below are learned (once; later runs load them).
    """
    settings: GraphSettings = dataclasses.replace(graph.settings, use_parents=False)
    checkpoints = LayerCheckpoints(
        checkpoint_dir, run_digest(str(mined.key), settings, mined.layers, mined.num_images)
    )
    top = len(graph.layers) - 1
    if checkpoints.load(top) is None:
        top_only = ExplanatoryGraph([graph.layers[top]], settings, torch.zeros(0, dtype=torch.bool))
        view = LayerSlice(mined, len(mined.layers) - 1)
        flips = [
            infer_graph(
                top_only, view, s, min(s + settings.chunk_size, view.num_images), device=device
            ).flipped
            for s in range(0, view.num_images, settings.chunk_size)
        ]
        checkpoints.save(top, graph.layers[top], torch.cat(flips))
    return learn_graph(
        mined,
        settings,
        device=device,
        progress=progress,
        checkpoint_dir=str(checkpoint_dir),
        key=mined.key,
    )


def _mirrored_to_original(px: torch.Tensor, flipped: torch.Tensor, size: int) -> torch.Tensor:
    """``[n, P, 2]`` positions read in each image's orientation, mapped to the original frame."""
    x = torch.where(flipped[:, None].to(torch.bool), size - px[..., 0], px[..., 0])
    return torch.stack([x, px[..., 1]], dim=-1)


def _control_graphs(
    loaded: LoadedGraph, mined: FeatureSet, progress: Progress
) -> dict[str, ExplanatoryGraph]:
    """The learned controls: the patterns at initialisation and, with two layers or more, the
    lower layers learned without parents (checkpointed under ``cache_dir/graphs``)."""
    graph, checkpoints = loaded.graph, loaded.cache_dir / "graphs"
    controls = {
        "initialisation": learn_graph(
            mined,
            dataclasses.replace(graph.settings, iterations=0),
            device=loaded.device,
            progress=progress,
            checkpoint_dir=str(checkpoints),
            key=mined.key,
        )
    }
    if len(graph.layers) > 1:
        controls["no_parents"] = no_parents_graph(
            graph, mined, device=loaded.device, checkpoint_dir=checkpoints, progress=progress
        )
    return controls


def evaluate_stability(
    loaded: LoadedGraph,
    records: Sequence[ImageRecord],
    *,
    top_k: int = 20,
    n_top: int | None = None,
    controls: bool = True,
    progress: Progress = NULL_PROGRESS,
) -> StabilityReport:
    """Instability of the stored graph's patterns beside every control of docs/method.md §7.3.

    Args:
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`); its cache folder
            holds the features and the controls' learning checkpoints, and its mining features
            (extracted again when their cache is gone) normalise the images and teach the
            controls.
        records: annotated images (part keypoints) of the model's category.
        top_k: top images per pattern (docs/method.md §7.1 default 20).
        n_top: patterns averaged per layer; default the layer's number of filters, so graph
            nodes and raw filters are compared on the same count.
        controls: also learn and score the initialisation and no-parents controls (the fixed
            points and the frozen prior cost nothing and are always shown).
        progress: progress bars.
    """
    names = landmark_names(records, needed_by="stability")
    features = loaded.extract(records, progress=progress)
    # the patterns were learned on mass normalised by the mining images' statistics
    source = loaded.normalised(features, loaded.mining_statistics())
    landmarks, visible = visible_landmarks(features.records, names, loaded.input_size)
    graphs = {"patterns": loaded.graph}
    if controls:  # the controls learn anew from the mining images
        graphs.update(_control_graphs(loaded, loaded.mining_features(progress=progress), progress))
    return stability_report(
        loaded.model_id,
        graphs,
        source,
        landmarks,
        visible,
        names,
        input_size=loaded.input_size,
        device=loaded.device,
        top_k=top_k,
        n_top=n_top,
        progress=progress,
    )


@dataclass
class _Detectors:
    """What ``stability_report`` infers per chunk of images, and where it accumulates."""

    graphs: dict[str, ExplanatoryGraph]  # "patterns" first, then the controls
    lower_graphs: dict[str, ExplanatoryGraph]  # controls inferred without their top layer
    acc: dict[str, list[TopKAccumulator]]  # per detector, per layer
    prior_px: list[torch.Tensor]  # per layer [P, 2]: the frozen prior's positions
    input_size: int
    device: torch.device

    @property
    def layers(self) -> list[Any]:
        """The stored graph's layers."""
        return self.graphs["patterns"].layers


def _detectors(
    graphs: dict[str, ExplanatoryGraph],
    n_landmarks: int,
    top_k: int,
    input_size: int,
    device: torch.device,
) -> _Detectors:
    """Accumulators for the graphs, the frozen prior and the raw filters."""
    graph = graphs["patterns"]
    layers = graph.layers
    # the frozen prior is ranked by the patterns' own scores: one top-k, two sets of positions
    acc: dict[str, list[TopKAccumulator]] = {
        name: [
            TopKAccumulator(
                lp.num_patterns, n_landmarks, top_k, views=2 if name == "patterns" else 1
            )
            for lp in layers
        ]
        for name in graphs
    }
    acc["filters"] = [TopKAccumulator(lp.geometry.channels, n_landmarks, top_k) for lp in layers]
    lower_only = {name for name, g in graphs.items() if name == "no_parents"}
    lower_only = {name for name in lower_only if _lower_layers_only(graphs[name], graph)}
    lower_graphs = {
        name: ExplanatoryGraph(graphs[name].layers[:-1], graphs[name].settings, graphs[name].flips)
        for name in lower_only
    }
    prior_px = [lp.geometry.to_pixels(lp.mu.float().cpu()) for lp in layers]  # [P, 2]
    return _Detectors(graphs, lower_graphs, acc, prior_px, input_size, device)


def _infer_graphs(
    run: _Detectors,
    memo: _ChunkMemo,
    start: int,
    stop: int,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
) -> torch.Tensor:
    """Infer the graph and its controls on images ``start:stop``; returns the graph's per-image
    mirror choice (which the lower-layers-only controls share)."""
    size, top = run.input_size, len(run.layers) - 1
    flips = torch.zeros(stop - start, dtype=torch.bool)
    for name, g in run.graphs.items():
        if name in run.lower_graphs:  # the graph's mirror choice; no top layer
            inference = infer_graph(
                run.lower_graphs[name],
                LayerSlice(memo, 0, -1),
                start,
                stop,
                device=run.device,
                flipped=flips if memo.mirrored else None,
            )
        else:
            inference = infer_graph(g, memo, start, stop, device=run.device)
        flipped = inference.flipped.cpu()
        if name == "patterns":
            flips = flipped
        for index in range(len(run.layers)):
            if name == "no_parents" and index == top:
                continue  # the stored graph's own top layer: reported as None
            positions = [inference.pixels(index, size)]
            if name == "patterns":
                prior = run.prior_px[index][None].expand(stop - start, -1, -1)
                positions.append(_mirrored_to_original(prior, flips, size))
            score = inference.layers[index].score
            run.acc[name][index].add(positions, score, landmarks, visible, flipped)
    return flips


def _add_filters(
    run: _Detectors,
    memo: _ChunkMemo,
    start: int,
    stop: int,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
) -> None:
    """Raw filters on images ``start:stop``: read plain, in their own frame."""
    for index, lp in enumerate(run.layers):
        geometry = lp.geometry
        mass = mixed_chunk(
            memo,
            index,
            start,
            stop,
            torch.zeros(stop - start, dtype=torch.bool),
            torch.device("cpu"),
        )
        fpos, fscore = filter_argmax_positions(mass, geometry.stride, geometry.rf_offset)
        run.acc["filters"][index].add(fpos, fscore, landmarks, visible, None)


def _layer_row(run: _Detectors, index: int, n_top: int | None, diagonal: float) -> dict[str, Any]:
    """One layer's unsigned and signed instability of every detector."""
    lp = run.layers[index]
    count = n_top or lp.geometry.channels
    row: dict[str, Any] = {"layer": lp.geometry.name, "n_top": count}
    order = run.acc["patterns"][index].ranking()
    for name in (*run.graphs, "frozen_prior", "filters"):
        if name == "no_parents" and index == len(run.layers) - 1:
            row[name] = row[name + "_signed"] = None  # the top layer is the same graph's
            continue
        # the frozen prior is the patterns' second view: scored on the very patterns (and
        # images) the graph ranks first
        frozen = name == "frozen_prior"
        held = run.acc["patterns" if frozen else name][index]
        for suffix, signed in (("", False), ("_signed", True)):
            row[name + suffix] = held.layer_mean(
                count,
                diagonal=diagonal,
                signed=signed,
                order=order if frozen else None,
                view=1 if frozen else 0,
            )
    row["ratio"] = row["patterns"] / row["filters"] if row["filters"] else float("nan")
    return row


def _fixed_points(
    landmarks: torch.Tensor, visible: torch.Tensor, flipped: torch.Tensor, size: int
) -> tuple[dict[str, float], torch.Tensor]:
    """The crop centre and the best point of a grid, read in the graph's orientation; and per
    landmark ``[J]`` the signed spread of a fixed point (the same for every point)."""
    diagonal = float(size) * math.sqrt(2.0)
    grid = fixed_point_grid(size, FIXED_GRID_CELLS)
    centre = torch.tensor([[size / 2.0, size / 2.0]])
    fixed_unsigned, fixed_signed = fixed_point_instability(
        torch.cat([centre, grid]), landmarks, visible, flipped, size=size, diagonal=diagonal
    )
    return {
        "centre": _mean(fixed_unsigned[0].tolist()),
        "centre_signed": _mean(fixed_signed[0].tolist()),
        "best": _mean(_nanmin(fixed_unsigned)),
        "best_signed": _mean(_nanmin(fixed_signed)),
        "grid_cells": float(FIXED_GRID_CELLS),
    }, fixed_signed[0]


def stability_report(
    model_id: str,
    graphs: dict[str, ExplanatoryGraph],
    source: FeatureSource,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    names: list[str],
    *,
    input_size: int,
    device: torch.device,
    top_k: int = 20,
    n_top: int | None = None,
    progress: Progress = NULL_PROGRESS,
) -> StabilityReport:
    """Score ``graphs["patterns"]`` and the other graphs given (controls) on ``source``.

    Streams over images ``chunk_size`` at a time; per detector and layer only the top-k images
    of each pattern are held.
    """
    n_images = source.num_images
    run = _detectors(graphs, len(names), top_k, input_size, device)
    chosen: list[torch.Tensor] = []
    step = graphs["patterns"].settings.chunk_size
    memo = _ChunkMemo(source)  # the graphs and the raw filters read the same maps
    with progress.task("stability: inferring patterns and controls", n_images) as bar:
        for start in range(0, n_images, step):
            stop = min(start + step, n_images)
            lm, vis = landmarks[start:stop], visible[start:stop]
            memo.forget()
            chosen.append(_infer_graphs(run, memo, start, stop, lm, vis))
            _add_filters(run, memo, start, stop, lm, vis)
            bar.advance(stop - start)
    memo.forget()
    report = StabilityReport(model_id, n_images, list(names), top_k)
    diagonal = float(input_size) * math.sqrt(2.0)
    report.per_layer = [_layer_row(run, i, n_top, diagonal) for i in range(len(run.layers))]
    flipped = torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.bool)
    report.fixed, fixed_per_landmark = _fixed_points(landmarks, visible, flipped, input_size)
    centre = centre_landmarks(names, landmarks, visible, input_size)
    report.best_landmark = _best_landmark(run, fixed_per_landmark, centre, n_top, diagonal)
    report.best_landmark["centre_landmarks"] = [
        n for n, c in zip(names, centre.tolist(), strict=True) if c
    ]
    return report


def _spreads(acc: TopKAccumulator, view: int, diagonal: float) -> torch.Tensor:
    """``[J, P]`` signed spread per landmark of one view (NaN: too few images)."""
    rows = acc.landmark_spreads(diagonal=diagonal, signed=True, view=view)
    nan = torch.full((acc.n_patterns,), float("nan"))
    return torch.stack([nan if row is None else row for row in rows])


def _best_landmark(
    run: _Detectors, fixed: torch.Tensor, centre: torch.Tensor, n_top: int | None, diagonal: float
) -> dict[str, Any]:
    """Best-landmark stability per layer and pooled over the layers (queries/best_landmark.py):
    the patterns (view 0) and the patterns frozen at μ (view 1) on the same top images."""
    per_layer, layers = [], []
    for index, lp in enumerate(run.layers):
        acc = run.acc["patterns"][index]
        values: BestLandmarks = best_landmarks(
            _spreads(acc, 0, diagonal),
            _spreads(acc, 1, diagonal),
            fixed,
            acc.ranking(),
            centre,
            n_top or lp.geometry.channels,
        )
        layers.append(values)
        per_layer.append({"layer": lp.geometry.name, **summarise(values)})
    return {"per_layer": per_layer, "overall": summarise(pooled(layers))}


def _nanmin(values: torch.Tensor) -> list[float]:
    """Per column (landmark) the smallest value over the rows (points), NaN columns kept."""
    filled = values.nan_to_num(nan=float("inf")).amin(dim=0)
    return [float("nan") if math.isinf(v) else float(v) for v in filled.tolist()]


__all__ = [
    "DETECTORS",
    "StabilityReport",
    "evaluate_stability",
    "no_parents_graph",
    "stability_report",
]
