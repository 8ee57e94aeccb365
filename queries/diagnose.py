"""Representation flaws of a stored graph: background patterns and part-unstable patterns.

Mining sees object crops only, so to ask "does this pattern fire on the background?" the graph
is inferred on a **context canvas**: each object box grown by a margin of ``m`` input pixels on
every side (``m`` ≈ ``context`` x the input size, rounded to a multiple of the largest stride)
and fed to the CNN at ``size + 2m`` pixels, so the object keeps the scale it had in training
and sits at a known place. The graph is translated onto the canvas (every prior, mean and
parent position moves by ``m / stride`` units; window and smoothing keep their size in units),
and each layer's training std is placed over the object region, with the channel's median std
around it (docs/method.md §2 needs a per-unit std; the canvas has more units than the crop). A
pattern can then drift off the object only where its own window reaches past the box and the
evidence there beats the object. Beyond the image border the canvas is black (as every crop
that leaves its image is).

Per pattern:

- ``off_object`` = Σ_images S·[p̂ outside the object box] / Σ_images S, the share of its firing
  mass (score S, docs/method.md §4) that lies off the object. ``> off_limit`` (default 0.5,
  "mostly outside") marks it ``background``.
- ``instability`` = docs/method.md §7.1 location instability of the pattern against the annotated
  parts over its ``top_k`` images (object-crop pixels, normalised by the crop diagonal). It is
  marked ``unstable`` when it is worse than the median instability of the same layer's raw
  filters (arg-max unit inside the object region of the same canvases): the pattern then
  locates parts no better than a typical raw filter, which is what the graph is meant to beat.

The verdict (``ok``, ``background``, ``unstable`` or ``background+unstable``) and ``off_object``
are written to ``Pattern.diagnosis`` / ``Pattern.off_object`` so Cypher can filter on them (see
the ``diagnosed-patterns`` canned query).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore, pattern_ids
from miner.data.records import Box, ImageRecord
from miner.graph import ExplanatoryGraph, FeatureSource, LayerPatterns, infer_graph
from miner.models.spec import LayerGeometry
from queries.loaded import LoadedGraph
from queries.normalisation import TrainingNormalised
from queries.stability import filter_argmax_positions
from queries.streaming import StreamedInstability

VERDICTS = ("ok", "background", "unstable", "background+unstable")


@dataclass
class DiagnosisReport:
    """Per-pattern findings (``patterns``: one row per pattern) and how they were reached."""

    model_id: str
    n_images: int
    context: float
    off_limit: float
    top_k: int
    patterns: pd.DataFrame  # pattern_id, layer, off_object, instability, filter_baseline, diagnosis

    def per_layer(self) -> list[dict[str, Any]]:
        """Counts per layer and verdict."""
        rows = []
        for layer, group in self.patterns.groupby("layer", sort=False):
            verdicts = group["diagnosis"]
            rows.append(
                {
                    "layer": layer,
                    "patterns": len(group),
                    "background": int(verdicts.str.contains("background").sum()),
                    "unstable": int(verdicts.str.contains("unstable").sum()),
                    "mean_off_object": float(group["off_object"].mean()),
                    "filter_baseline": float(group["filter_baseline"].iloc[0]),
                }
            )
        return rows

    def flagged(self, limit: int | None = None) -> pd.DataFrame:
        """Patterns with a flaw, most off-object first."""
        bad = self.patterns[self.patterns["diagnosis"] != "ok"]
        bad = bad.sort_values(["off_object", "pattern_id"], ascending=[False, True])
        return bad if limit is None else bad.head(limit)

    def to_dict(self, limit: int | None = 20) -> dict[str, Any]:
        """JSON-ready summary with the ``limit`` most off-object flagged patterns."""
        flagged = self.flagged(limit).replace({np.nan: None})
        return {
            "model_id": self.model_id,
            "n_images": self.n_images,
            "context": self.context,
            "off_limit": self.off_limit,
            "top_k": self.top_k,
            "per_layer": self.per_layer(),
            "flagged": flagged.to_dict("records"),
        }


def canvas_margin(context: float, size: int, strides: Sequence[float]) -> int:
    """The canvas margin in input pixels: ``context x size`` rounded to a multiple of the
    largest stride (at least one), so every layer's map shifts by whole units."""
    step = max(int(np.rint(max(strides))), 1)
    return max(int(np.rint(context * size / step)), 1) * step


def canvas_box(box: Box, size: int, margin: int) -> Box:
    """``box`` grown so that, resized to ``size + 2 margin``, the object spans ``[m, m+size]``."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin / size, (y1 - y0) * margin / size
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def translate_graph(
    graph: ExplanatoryGraph, geometry: Sequence[LayerGeometry], margin: int
) -> ExplanatoryGraph:
    """``graph`` moved onto a canvas with ``margin`` more pixels on every side.

    Positions shift by ``margin / stride`` units; the window and evidence smoothing, fractions
    of the map height, are rescaled so that they keep their size in units.
    """
    layers = []
    for index, (lp, geo) in enumerate(zip(graph.layers, geometry, strict=True)):
        shift = margin / geo.stride
        upper = geometry[index + 1] if index + 1 < len(geometry) else None
        parent_mean = lp.parent_mean + (margin / upper.stride if upper is not None else 0.0)
        layers.append(
            dataclasses.replace(
                lp,
                geometry=geo,
                mu=lp.mu + shift,
                mean_position=lp.mean_position + shift,
                parent_mean=parent_mean,
            )
        )
    ratio = graph.layers[-1].geometry.height / geometry[-1].height
    settings = dataclasses.replace(
        graph.settings,
        window=graph.settings.window * ratio,
        sigma_map=graph.settings.sigma_map * ratio,
    )
    return ExplanatoryGraph(layers=layers, settings=settings, flips=graph.flips)


def canvas_std(
    train_std: Sequence[np.ndarray], geometry: Sequence[LayerGeometry], margin: int
) -> list[np.ndarray]:
    """Training std per layer placed over the object region of the canvas maps; around it each
    channel's median std."""
    out = []
    for std, geo in zip(train_std, geometry, strict=True):
        c, h, w = std.shape
        offset = int(np.rint(margin / geo.stride))
        median = np.median(std.reshape(c, -1), axis=1).astype(np.float32)
        full = np.broadcast_to(median[:, None, None], (c, geo.height, geo.width)).copy()
        full[:, offset : offset + h, offset : offset + w] = std[
            :, : geo.height - offset, : geo.width - offset
        ]
        out.append(full)
    return out


def off_object_share(positions: torch.Tensor, scores: torch.Tensor, size: int) -> np.ndarray:
    """``[P]`` share of each pattern's firing mass (Σ over images of its score) that lies outside
    the object, i.e. outside ``[0, size]²`` in object-crop pixels (0 for a pattern that never
    fired).

    Args:
        positions: ``[N, P, 2]`` inferred positions, object-crop pixels.
        scores: ``[N, P]`` inference scores.
        size: the crop side.
    """
    inside = ((positions >= 0) & (positions <= size)).all(dim=-1)
    mass = scores.double().clamp(min=0.0)
    total = mass.sum(dim=0)
    off = ((mass * ~inside).sum(dim=0) / total.clamp(min=1e-300)).numpy()
    return np.where(total.numpy() > 0, off, 0.0)


class OffObjectShare:
    """:func:`off_object_share` accumulated over chunks of images (memory: ``[P]`` sums).

    Equals the one-shot function up to the rounding of float64 sums taken chunk by chunk.
    """

    def __init__(self, n_patterns: int, size: int) -> None:
        self.size = size
        self.total = torch.zeros(n_patterns, dtype=torch.float64)
        self.off = torch.zeros(n_patterns, dtype=torch.float64)

    def add(self, positions: torch.Tensor, scores: torch.Tensor) -> None:
        """A chunk: positions ``[n, P, 2]`` in object-crop pixels, scores ``[n, P]``."""
        inside = ((positions >= 0) & (positions <= self.size)).all(dim=-1)
        mass = scores.double().clamp(min=0.0)
        self.total += mass.sum(dim=0)
        self.off += (mass * ~inside).sum(dim=0)

    def share(self) -> np.ndarray:
        """``[P]`` off-object share of the firing mass so far (0 where it never fired)."""
        off = (self.off / self.total.clamp(min=1e-300)).numpy()
        return np.where(self.total.numpy() > 0, off, 0.0)


def _canvas_records(
    records: Sequence[ImageRecord], size: int, margin: int
) -> tuple[list[ImageRecord], dict[str, Box]]:
    """Records with canvas boxes, and each object box by path."""
    out, objects = [], {}
    for record in records:
        if record.box is None:
            continue
        out.append(dataclasses.replace(record, box=canvas_box(record.box, size, margin)))
        objects[str(record.path)] = record.box
    if not out:
        raise InputError(
            "none of the images has an object box: diagnose needs annotations with boxes"
        )
    return out, objects


def _landmarks(
    records: Sequence[ImageRecord], boxes: np.ndarray, names: Sequence[str], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Part keypoints in object-crop pixels ``[N, J, 2]`` and visibility ``[N, J]``."""
    points = np.zeros((len(records), len(names), 2))
    shown = np.zeros((len(records), len(names)), dtype=bool)
    scale = size / np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-9)
    for j, name in enumerate(names):  # a handful of part names; all images at once
        kps = [record.parts.get(name) for record in records]
        shown[:, j] = [kp is not None and kp.visible for kp in kps]
        xy = np.array([(kp.x, kp.y) if kp is not None else (0.0, 0.0) for kp in kps])
        points[:, j] = (xy - boxes[:, :2]) * scale
    return torch.from_numpy(points).float(), torch.from_numpy(shown)


def _object_only(mass: torch.Tensor, geo: LayerGeometry, margin: int, size: int) -> torch.Tensor:
    """Mass with the units whose centre lies outside the object region set to zero."""
    units = torch.arange(max(geo.height, geo.width), dtype=mass.dtype) * geo.stride
    centre = units + geo.rf_offset
    inside = (centre >= margin) & (centre < margin + size)
    rows, cols = inside[: geo.height], inside[: geo.width]
    return mass * (rows[:, None] & cols[None, :]).to(mass.dtype)


@dataclass
class _Canvas:
    """The graph moved onto context canvases of the images, and their features."""

    graph: ExplanatoryGraph
    source: TrainingNormalised
    margin: int
    size: int  # the object crop's side inside the canvas
    landmarks: torch.Tensor  # [N, J, 2] object-crop px
    visible: torch.Tensor  # [N, J]
    names: list[str]  # the landmarks' part names


def _canvas(
    loaded: LoadedGraph, records: Sequence[ImageRecord], context: float, progress: Progress
) -> _Canvas:
    """Features of every boxed image on its canvas, the translated graph and the canvas std."""
    size = loaded.input_size
    strides = [lp.geometry.stride for lp in loaded.graph.layers]
    margin = canvas_margin(context, size, strides)
    wide, object_boxes = _canvas_records(records, size, margin)
    features = loaded.extract(
        wide,
        min_box=1,
        model=dataclasses.replace(loaded.model, input_size=size + 2 * margin),
        progress=progress,
    )
    graph = translate_graph(loaded.graph, features.layers, margin)
    train = loaded.mining_statistics()
    source = TrainingNormalised(features, canvas_std(train, features.layers, margin))
    boxes = np.array([object_boxes[str(r.path)] for r in features.records], dtype=np.float64)
    names = sorted({name for r in features.records for name in r.visible_parts()})
    landmarks, visible = _landmarks(features.records, boxes, names, size)
    return _Canvas(graph, source, margin, size, landmarks, visible, names)


@dataclass
class _LayerTallies:
    """Streamed per-layer sums: off-object mass and the top-k instabilities."""

    off_object: OffObjectShare
    patterns: StreamedInstability
    filters: StreamedInstability


def _tally(
    canvas: _Canvas, top_k: int, device: str | torch.device, progress: Progress
) -> list[_LayerTallies]:
    """Infer the canvas graph chunk by chunk; per layer only running sums and top-k lists are
    held."""
    graph, source, margin, size = canvas.graph, canvas.source, canvas.margin, canvas.size
    n_names = len(canvas.names)
    tallies = [
        _LayerTallies(
            OffObjectShare(layer.num_patterns, size),
            StreamedInstability(n_names, top_k),
            StreamedInstability(n_names, top_k),
        )
        for layer in graph.layers
    ]
    step = graph.settings.chunk_size
    with progress.task("diagnosing patterns", source.num_images) as bar:
        for start in range(0, source.num_images, step):
            stop = min(start + step, source.num_images)
            inference = infer_graph(graph, source, start, stop, device=device, flipped=None)
            lm, vis = canvas.landmarks[start:stop], canvas.visible[start:stop]
            for index, (layer, tally) in enumerate(zip(graph.layers, tallies, strict=True)):
                # canvas pixels -> object-crop pixels
                pos = inference.pixels(index, size + 2 * margin) - margin
                score = inference.layers[index].score
                tally.off_object.add(pos, score)
                fp, fs = _object_filters(source, index, start, stop, layer.geometry, margin, size)
                if n_names:
                    tally.patterns.add(pos, score, lm, vis)
                    tally.filters.add(fp - margin, fs, lm, vis)
            bar.advance(stop - start)
    return tallies


def _object_filters(
    source: FeatureSource,
    index: int,
    start: int,
    stop: int,
    geo: LayerGeometry,
    margin: int,
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw filters' arg-max positions (canvas px) and peaks within the object region."""
    mass = _object_only(source.chunk(index, start, stop), geo, margin, size)
    return filter_argmax_positions(mass, geo.stride, geo.rf_offset)


def _layer_verdicts(
    model_id: str,
    layer: LayerPatterns,
    tally: _LayerTallies,
    *,
    landmarks: bool,
    off_limit: float,
    diagonal: float,
) -> pd.DataFrame:
    """One layer's per-pattern findings and verdicts."""
    off = tally.off_object.share()
    if landmarks:
        unstable = (
            tally.patterns.per_pattern(layer.num_patterns, diagonal=diagonal).double().numpy()
        )
        raw = tally.filters.per_pattern(layer.geometry.channels, diagonal=diagonal).numpy()
        finite = raw[np.isfinite(raw)]
        baseline = float(np.median(finite)) if finite.size else float("nan")
    else:
        unstable = np.full(layer.num_patterns, np.nan)
        baseline = float("nan")
    is_background = off > off_limit
    is_unstable = np.isfinite(unstable) & (unstable > baseline)
    verdict = np.select(
        [is_background & is_unstable, is_background, is_unstable],
        ["background+unstable", "background", "unstable"],
        default="ok",
    )
    filters = layer.filter.numpy()
    within = np.arange(layer.num_patterns) - filters * layer.per_filter
    return pd.DataFrame(
        {
            "pattern_id": pattern_ids(model_id, layer.geometry.name, filters, within),
            "layer": layer.geometry.name,
            "off_object": off,
            "instability": unstable,
            "filter_baseline": baseline,
            "diagnosis": verdict,
        }
    )


def diagnose(
    loaded: LoadedGraph,
    records: Sequence[ImageRecord],
    *,
    context: float = 0.25,
    off_limit: float = 0.5,
    top_k: int = 20,
    progress: Progress = NULL_PROGRESS,
) -> DiagnosisReport:
    """Off-object share and part instability of every pattern of a stored graph.

    Args:
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`); nothing is written
            (see :func:`store_diagnosis`).
        records: annotated images of the model's category (boxes required, parts optional).
        context: canvas margin on every side as a fraction of the input size.
        off_limit: off-object share above which a pattern is a background pattern.
        top_k: images per pattern for the instability (docs/method.md §7.1).
        progress: progress bars.

    Raises:
        InputError: no image with a box, or settings out of range.
    """
    if not 0 < context <= 1:
        raise InputError(f"context must lie in (0, 1], got {context}: try 0.25")
    if not 0 < off_limit < 1:
        raise InputError(f"off_limit must lie in (0, 1), got {off_limit}: try 0.5")
    canvas = _canvas(loaded, records, context, progress)
    tallies = _tally(canvas, top_k, str(loaded.device), progress)
    diagonal = float(canvas.size) * float(np.sqrt(2.0))
    frames = [
        _layer_verdicts(
            loaded.model_id,
            layer,
            tally,
            landmarks=bool(canvas.names),
            off_limit=off_limit,
            diagonal=diagonal,
        )
        for layer, tally in zip(canvas.graph.layers, tallies, strict=True)
    ]
    return DiagnosisReport(
        model_id=loaded.model_id,
        n_images=canvas.source.num_images,
        context=context,
        off_limit=off_limit,
        top_k=top_k,
        patterns=pd.concat(frames, ignore_index=True),
    )


def store_diagnosis(store: GraphStore, report: DiagnosisReport) -> None:
    """Write ``Pattern.diagnosis`` and ``Pattern.off_object`` in one bulk upsert.

    Raises:
        ReadOnlyViolation: the store is open read-only.
    """
    store.write_nodes("Pattern", report.patterns[["pattern_id", "diagnosis", "off_object"]])


__all__ = [
    "VERDICTS",
    "DiagnosisReport",
    "canvas_box",
    "canvas_margin",
    "canvas_std",
    "diagnose",
    "off_object_share",
    "store_diagnosis",
    "translate_graph",
]
