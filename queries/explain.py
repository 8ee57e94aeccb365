"""Explain one image with a stored explanatory graph: "which patterns fired, and where?".

The graph is read back from the store and its CNN re-loaded; the image (its object box, or the
whole image) goes through the CNN once, and the graph inferred on it top-down (docs/method.md §4),
choosing the orientation as mining did.

**Normalisation.** Scores are only comparable with the training scores when the new image's
activations are divided by the same per-unit std ``s`` (docs/method.md §2) as the training images'.
That std is read from the training images' feature-cache entry (``params.features_key``); when
the cache is gone it is computed again from the training images the model records.

**Fired.** A pattern fires on the image when its inference score reaches ``threshold`` (default
:data:`FIRED_THRESHOLD` = 1) times its *reference*: a high quantile (default
:data:`FIRED_QUANTILE` = 0.9) of its own scores on the images it was mined on. Each pattern is
measured against its own training distribution, so a pattern that always answers strongly does
not fire on every image and a weak one is not drowned out. The store does not keep every training
score, only each pattern's best images (``fires_per_pattern`` of ``explgraph mine``, 20)
(``FIRES`` edges, which hold that pattern's top scores exactly): the reference is the score of
the pattern's r-th best mining image, ``r = ceil((1 − quantile) · N)`` for N mining images,
capped at the stored count — so past 200 images it is a stricter quantile (1 − 20/N), never a
looser one. Patterns without stored firings fall back to their mean training score
(``Pattern.mean_score``). Every reference is floored at a tenth of its layer's median, so that
patterns that hardly ever fired in training do not pass on a flicker. Patterns are ranked by
the ratio score / reference. An image far from the training domain can still push scores past
every training quantile (the normalisation of §2 was fitted on training images); the heat map's
percentile clipping keeps such outliers from hiding the rest.

**Heat map.** Each fired pattern adds its ratio at its inferred position (input-crop pixels),
blurred by a Gaussian as wide as its layer's stride, the positional precision of its map; the
crop's heat is then mapped back onto the image (zero outside the box). :func:`write_heatmap`
draws it with matplotlib over the image: a perceptual colour map (``magma``), the colour scale
clipped at the 99th percentile of the positive heat, a colour bar, and a title naming the model
and the number of fired patterns.

**Parts.** Where And-Or graphs exist (``aog build``), every part is located by
:func:`queries.aog.locate.locate_part` on the same image and frame: ``explain`` and ``locate``
give one answer, with the same voters ("because pattern X fired here").

**Frame and domain.** The explanation names the frame it read (the object box, or "no box: the
whole image was used as the frame"), and carries the domain check of :mod:`queries.domain`: how
far the image is from the mining images, and a warning when it is outside what the graph has
seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore, pattern_ids
from miner.data.records import Box, ImageRecord
from miner.graph import GraphInference, LayerPatterns, infer_graph
from miner.models.spec import LayerGeometry, LoadedModel
from queries.domain import (
    FIRED_QUANTILE,
    REFERENCE_FLOOR,
    DomainCheck,
    class_name,
    class_probabilities,
    measure_domain,
    mining_reference,
    reference_scores,
    stored_firings,
    training_quantiles,
)
from queries.frames import frame_line
from queries.graphs import mined_boxes
from queries.loaded import LoadedGraph
from queries.normalisation import TrainingNormalised
from queries.pictures import new_figure, save_png

#: default: a pattern fires at this many times its reference score
FIRED_THRESHOLD = 1.0
#: the heat map's colour scale ends at this percentile of the positive heat (outliers clip)
HEAT_CLIP_PERCENTILE = 99.0


@dataclass(frozen=True)
class FiredPattern:
    """One pattern that fired on the explained image."""

    pattern_id: str
    layer: str
    filter: int
    x: float  # original-image pixels
    y: float
    score: float  # inference score S
    ratio: float  # S / the pattern's reference score


@dataclass(frozen=True)
class PartGroup:
    """Where one And-Or-graph part is, as ``locate`` puts it, and the patterns that voted."""

    name: str
    x: float  # original-image pixels
    y: float
    template: int
    mirrored: bool
    score: float  # the winning vote
    voters: list[dict[str, Any]] = field(default_factory=list)  # locate's "because", best first

    def line(self) -> str:
        """One line, in ``locate``'s words."""
        how = f"[template {self.template}{', mirrored' if self.mirrored else ''}]"
        if not self.voters:
            return f"{self.name} at ({self.x:.1f}, {self.y:.1f}) {how}: no pattern of its AOG fired"
        because = "; ".join(
            f"pattern {v['pattern_id']} fired at ({v['x']:.0f}, {v['y']:.0f})"
            for v in self.voters[:3]
        )
        return f"{self.name} at ({self.x:.1f}, {self.y:.1f}) {how} because {because}"


@dataclass
class Explanation:
    """What :func:`explain_image` found. Positions are original-image pixels."""

    model_id: str
    image: Path
    box: Box
    threshold: float
    flipped: bool
    prediction: list[tuple[str, float]]
    fired: dict[str, list[FiredPattern]]  # layer -> fired patterns, best ratio first
    n_patterns: dict[str, int]  # layer -> patterns in the graph
    quantile: float = FIRED_QUANTILE  # the reference: this quantile of the mining scores
    parts: list[PartGroup] = field(default_factory=list)
    heatmap: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [H, W] image px
    frame: str = ""  # the frame read: the object box, or the whole image (queries.frames)
    domain: DomainCheck | None = None  # how far the image is from the mining images

    @property
    def n_fired(self) -> int:
        """Fired patterns over all layers."""
        return sum(len(rows) for rows in self.fired.values())

    def top_patterns(self, n: int) -> list[FiredPattern]:
        """The ``n`` fired patterns with the highest ratio, over all layers."""
        every = [p for rows in self.fired.values() for p in rows]
        return sorted(every, key=lambda p: -p.ratio)[:n]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary (``top`` fired patterns per layer; all when ``None``)."""
        return {
            "model_id": self.model_id,
            "image": str(self.image),
            "box": list(self.box),
            "threshold": self.threshold,
            "quantile": self.quantile,
            "fired_line": self.fired_line(),
            "flipped": self.flipped,
            "prediction": [{"class": c, "probability": p} for c, p in self.prediction],
            "layers": [
                {
                    "layer": layer,
                    "fired": len(rows),
                    "patterns": self.n_patterns[layer],
                    "top": [vars(p) for p in rows[:top]],
                }
                for layer, rows in self.fired.items()
            ],
            "parts": [vars(part) for part in self.parts],
            "frame": self.frame,
            "domain": self.domain.to_dict() if self.domain else None,
        }

    def text(self, top: int = 5) -> str:
        """Human lines: frame, prediction, domain, parts, then per layer the top fired
        patterns (the domain warning is not among them: :attr:`warning`)."""
        lines = [f"{self.image.name} explained by {self.model_id}", self.frame]
        guess = ", ".join(f"{name} {prob:.1%}" for name, prob in self.prediction)
        lines.append(f"prediction: {guess}")
        if self.domain is not None:
            lines.append(self.domain.line())
        lines.append(self.fired_line())
        for part in self.parts:
            lines.append(f"  {part.line()}")
        for layer, rows in self.fired.items():
            lines.append(f"{layer}: {len(rows)} of {self.n_patterns[layer]} patterns fired")
            for p in rows[:top]:
                lines.append(
                    f"  {p.pattern_id:<40} at ({p.x:6.1f}, {p.y:6.1f})  score {p.score:.3g}"
                    f"  x{p.ratio:.2f}"
                )
        return "\n".join(lines)

    def fired_line(self) -> str:
        """What "fired" means here, in the words the CLI and the web page both use."""
        return (
            f"fired: {self.n_fired} patterns (score >= {self.threshold:g} x the pattern's "
            f"reference, the {self.quantile:g} quantile of its mining-image scores)"
            + (", image read mirrored" if self.flipped else "")
        )

    @property
    def warning(self) -> str | None:
        """The one warning line when the image is outside what the graph has seen."""
        return self.domain.warning() if self.domain is not None else None


def predict(model: LoadedModel, crop: torch.Tensor, top: int = 3) -> list[tuple[str, float]]:
    """The CNN's ``top`` classes with softmax probabilities for one ``[3, S, S]`` uint8 crop.

    The module's training mode is restored afterwards.
    """
    probabilities = class_probabilities(model, crop[None])
    if probabilities is None:
        return []
    values, indices = probabilities[0].topk(min(top, probabilities.shape[1]))
    return [
        (class_name(model, i), float(v))
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def _heat_in_crop(
    inference: GraphInference,
    fired_masks: list[np.ndarray],
    ratios: list[np.ndarray],
    geometry: Sequence[LayerGeometry],
    size: int,
) -> np.ndarray:
    """``[size, size]`` heat: each fired pattern's ratio at its crop position, blurred per layer."""
    from scipy.ndimage import gaussian_filter

    heat = np.zeros((size, size), dtype=np.float64)
    for index, (mask, ratio) in enumerate(zip(fired_masks, ratios, strict=True)):
        if not mask.any():
            continue
        px = inference.pixels(index, size)[0].numpy()[mask]
        cols = np.clip(np.floor(px[:, 0]), 0, size - 1).astype(np.int64)
        rows = np.clip(np.floor(px[:, 1]), 0, size - 1).astype(np.int64)
        layer = np.zeros_like(heat)
        np.add.at(layer, (rows, cols), ratio[mask])
        heat += gaussian_filter(layer, sigma=max(float(geometry[index].stride), 1.0))
    return heat


def _crop_to_image(heat: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """Sample a crop-frame heat map at every image pixel centre (zero outside the box)."""
    from scipy.ndimage import map_coordinates

    from miner.data.images import to_crop_coords

    size = heat.shape[0]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    crop = to_crop_coords(np.stack([xs, ys], axis=-1), box, size) - 0.5  # pixel-centre frame
    inside = (crop >= -0.5).all(axis=-1) & (crop <= size - 0.5).all(axis=-1)
    values = map_coordinates(
        heat, [crop[..., 1].ravel(), crop[..., 0].ravel()], order=1, mode="nearest"
    ).reshape(height, width)
    return np.where(inside, values, 0.0)


@dataclass
class _LayerFiring:
    """What fired in one layer: the patterns, the fired mask and every pattern's ratio."""

    fired: list[FiredPattern]
    mask: np.ndarray  # [P] bool
    ratio: np.ndarray  # [P] score / reference


def _layer_firing(
    model_id: str,
    index: int,
    layer: LayerPatterns,
    inference: GraphInference,
    quantiles: pd.Series,
    threshold: float,
    box: Box,
    size: int,
) -> _LayerFiring:
    """The patterns of one layer whose score reaches ``threshold`` x their reference."""
    from miner.data.images import from_crop_coords

    score = inference.layers[index].score[0].double().numpy()
    filters = layer.filter.numpy()
    every = np.arange(layer.num_patterns)
    name = layer.geometry.name
    all_ids = pattern_ids(model_id, name, filters, every - filters * layer.per_filter)
    reference = quantiles.reindex(all_ids).to_numpy(np.float64)
    reference = np.where(np.isnan(reference), layer.mean_score.double().numpy(), reference)
    ratio = score / reference_scores(reference)
    mask = (score > 0) & (ratio >= threshold)
    chosen = np.flatnonzero(mask)
    chosen = chosen[np.argsort(-ratio[chosen], kind="stable")]
    crop_px = inference.pixels(index, size)[0].double().numpy()
    image_px = from_crop_coords(crop_px[chosen], box, size)
    ids = pattern_ids(model_id, name, filters[chosen], chosen - filters[chosen] * layer.per_filter)
    fired = [
        FiredPattern(pid, name, int(filters[i]), float(x), float(y), float(score[i]), float(r))
        for pid, i, (x, y), r in zip(ids, chosen, image_px, ratio[chosen], strict=True)
    ]
    return _LayerFiring(fired, mask, ratio)


def _infer_image(
    loaded: LoadedGraph, image: Path, box: Box | None, progress: Progress
) -> GraphInference:
    """The graph inferred on one image normalised by the mining statistics, read the way the
    graph explains it better (as mining did)."""
    features = loaded.extract([ImageRecord(path=image, box=box)], min_box=1, progress=progress)
    statistics = loaded.mining_statistics()
    source = TrainingNormalised(features, statistics)
    return infer_graph(loaded.graph, source, 0, 1, device=str(loaded.device), flipped=None)


def _check_rule(threshold: float, quantile: float) -> None:
    """:class:`InputError` for a firing rule that cannot be met."""
    if threshold <= 0:
        raise InputError(f"threshold must be positive, got {threshold}: try {FIRED_THRESHOLD}")
    if not 0 < quantile < 1:
        raise InputError(f"quantile must be in (0, 1), got {quantile}: try {FIRED_QUANTILE}")


def explain_image(
    store: GraphStore,
    loaded: LoadedGraph,
    image: Path,
    *,
    box: Box | None = None,
    threshold: float = FIRED_THRESHOLD,
    quantile: float = FIRED_QUANTILE,
    progress: Progress = NULL_PROGRESS,
) -> Explanation:
    """Infer the stored graph on ``image`` and say what fired where.

    Args:
        store: where the model lives (its firings give the references, its AOGs the parts).
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`); its mining
            statistics are extracted again when the mining cache is gone.
        image: the image file.
        box: the object box ``(x0, y0, x1, y1)`` in image pixels; ``None`` = the whole image.
        threshold: a pattern fires when its score reaches ``threshold`` x its reference.
        quantile: the reference is this quantile of the pattern's mining-image scores.
        progress: progress bars.

    Raises:
        ImageError: the image cannot be read.
        InputError: a non-positive threshold, a quantile outside (0, 1).
    """
    from miner.data.images import crop_to_box, full_box, load_image

    _check_rule(threshold, quantile)
    picture = load_image(image)
    the_box = box if box is not None else full_box(picture)
    size, graph = loaded.input_size, loaded.graph
    inference = _infer_image(loaded, Path(image), box, progress)
    fires = stored_firings(store, loaded.model_id)
    quantiles = training_quantiles(fires, quantile)
    flipped = bool(inference.flipped[0]) if inference.flipped.numel() else False
    layers = [
        _layer_firing(loaded.model_id, index, layer, inference, quantiles, threshold, the_box, size)
        for index, layer in enumerate(graph.layers)
    ]
    heat = _heat_in_crop(
        inference, [f.mask for f in layers], [f.ratio for f in layers], inference.geometry, size
    )
    crop = torch.from_numpy(np.array(crop_to_box(picture, box, size))).permute(2, 0, 1)
    prediction = predict(loaded.model, crop)
    return Explanation(
        model_id=loaded.model_id,
        image=Path(image),
        box=the_box,
        threshold=threshold,
        flipped=flipped,
        prediction=prediction,
        quantile=quantile,
        fired={lp.geometry.name: f.fired for lp, f in zip(graph.layers, layers, strict=True)},
        n_patterns={lp.geometry.name: lp.num_patterns for lp in graph.layers},
        parts=located_parts(store, loaded, ImageRecord(path=Path(image), box=box), progress),
        heatmap=_crop_to_image(heat, the_box, picture.width, picture.height),
        frame=frame_line(box, (picture.width, picture.height)),
        domain=_domain_check(store, loaded, fires, inference, prediction),
    )


def _domain_check(
    store: GraphStore,
    loaded: LoadedGraph,
    fires: pd.DataFrame,
    inference: GraphInference,
    prediction: list[tuple[str, float]],
) -> DomainCheck:
    """How far the explained image is from the mining images (:mod:`queries.domain`)."""
    reference = mining_reference(store, loaded.model_id, loaded.graph, fires=fires)
    scores = [layer.score for layer in inference.layers]
    return measure_domain(reference, scores, [prediction[0] if prediction else None])[0]


def located_parts(
    store: GraphStore, loaded: LoadedGraph, record: ImageRecord, progress: Progress = NULL_PROGRESS
) -> list[PartGroup]:
    """Every part with a stored AOG, located on ``record`` by ``locate``'s own entry
    (:func:`queries.aog.locate.locate_part`): one answer per question."""
    from queries.aog import list_parts, locate_part

    parts = []
    for name in list_parts(store, loaded.model_id):  # one AOG per part; a handful at most
        located = locate_part(store, loaded, name, [record], progress=progress).predictions[0]
        if located is not None:
            parts.append(
                PartGroup(
                    name,
                    located.x,
                    located.y,
                    located.template,
                    located.mirrored,
                    located.score,
                    list(located.because),
                )
            )
    return parts


def heat_scale(heat: np.ndarray, percentile: float = HEAT_CLIP_PERCENTILE) -> float:
    """The top of the colour scale: ``percentile`` of the positive heat (1 when there is none),
    so one outlier pattern does not wash out the rest of the map."""
    positive = heat[heat > 0]
    if positive.size == 0:
        return 1.0
    return max(float(np.percentile(positive, percentile)), 1e-12)


def write_heatmap_overlay(
    explanation: Explanation,
    path: Path,
    *,
    alpha: float = 0.6,
    cmap: str = "magma",
    percentile: float = HEAT_CLIP_PERCENTILE,
) -> None:
    """The heat map blended over the image at the image's own size (no colour bar, no title),
    with the colour scale of :func:`write_heatmap`: for pages that draw markers over the image."""
    from matplotlib import colormaps
    from PIL import Image as PILImage

    from miner.data.images import load_image

    picture = np.asarray(load_image(explanation.image), dtype=np.float64)
    heat = explanation.heatmap
    colours = colormaps[cmap](np.clip(heat / heat_scale(heat, percentile), 0.0, 1.0))[..., :3]
    weight = np.where(heat > 0, alpha, 0.0)[..., None]
    blended = picture * (1.0 - weight) + 255.0 * colours * weight
    PILImage.fromarray(np.rint(blended).astype(np.uint8)).save(path, format="PNG")


def write_heatmap(
    explanation: Explanation,
    path: Path,
    *,
    alpha: float = 0.6,
    cmap: str = "magma",
    percentile: float = HEAT_CLIP_PERCENTILE,
) -> None:
    """The heat map over the image as a PNG: perceptual colour map, colour scale clipped at
    ``percentile`` of the positive heat, a colour bar, and a title with the model and the number
    of fired patterns (:mod:`queries.pictures`).

    Raises:
        InputError: ``path`` cannot be written.
    """
    from matplotlib.colors import Normalize

    from miner.data.images import load_image

    picture = np.asarray(load_image(explanation.image))
    heat = explanation.heatmap
    height, width = heat.shape
    top = heat_scale(heat, percentile)
    side = 5.0  # inches of the longer image side; small images are scaled up to stay readable
    scale = side / max(height, width)
    figure = new_figure(width * scale + 1.4, height * scale + 0.9)
    axes = figure.add_subplot()
    axes.imshow(picture, interpolation="nearest")
    shown = axes.imshow(
        np.ma.masked_less_equal(heat, 0.0),
        cmap=cmap,
        norm=Normalize(vmin=0.0, vmax=top, clip=True),
        alpha=alpha,
        interpolation="bilinear",
    )
    axes.set_axis_off()
    bar = figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.03)
    bar.set_label(f"fired-pattern heat (score / reference), clipped at p{percentile:g}", fontsize=8)
    axes.set_title(
        f"{explanation.model_id}: {explanation.n_fired} patterns fired on {explanation.image.name}",
        fontsize=9,
    )
    save_png(figure, path, what="the heat map", tight=True)


def contact_sheet(
    store: GraphStore,
    model_id: str,
    pattern_ids: Sequence[str],
    path: Path,
    *,
    per_pattern: int = 6,
    tile: int = 64,
) -> int:
    """A PNG with one row per pattern: its best training patches (top FIRES by score).

    Each patch is the pattern's receptive field (``Layer.rf_size`` input pixels, mapped into the
    image through its object box when the training annotations give one) around its firing
    position. Returns the number of patches drawn.
    """
    from PIL import Image, ImageDraw

    from miner.data.images import load_image

    if not pattern_ids:
        raise InputError("no patterns to show: nothing fired (lower --threshold)")
    rows = pd.DataFrame(
        store.query(
            "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE p.pattern_id IN $ids "
            "MATCH (l:Layer) WHERE l.model_id = p.model_id AND l.name = p.layer "
            "RETURN p.pattern_id AS pattern_id, i.path AS path, f.x AS x, f.y AS y, "
            "f.score AS score, l.rf_size AS rf_size",
            {"ids": list(pattern_ids)},
        )
    )
    model = store.describe_model(model_id)
    size = float(model.get("input_size") or 224)
    boxes = mined_boxes(model["params"])
    sheet = Image.new("RGB", (tile * per_pattern, tile * len(pattern_ids)), (32, 32, 32))
    drawn = 0
    if rows.empty:
        sheet.save(path, format="PNG")
        return 0
    rows = rows.sort_values(["pattern_id", "score"], ascending=[True, False])
    best = rows.groupby("pattern_id").head(per_pattern)
    draw = ImageDraw.Draw(sheet)
    for r, pid in enumerate(pattern_ids):
        mine = best[best["pattern_id"] == pid]
        for c, row in enumerate(mine.itertuples(index=False)):  # a few dozen patches at most
            picture = load_image(row.path)
            box = boxes.get(str(Path(row.path).resolve()))
            sx = (box[2] - box[0]) / size if box else picture.width / size
            sy = (box[3] - box[1]) / size if box else picture.height / size
            hw, hh = row.rf_size * sx / 2.0, row.rf_size * sy / 2.0
            patch = picture.crop(
                (int(row.x - hw), int(row.y - hh), int(row.x + hw) + 1, int(row.y + hh) + 1)
            )
            sheet.paste(patch.resize((tile, tile)), (c * tile, r * tile))
            drawn += 1
        draw.text((2, r * tile + 2), pid.removeprefix(f"{model_id}/"), fill=(255, 255, 0))
    sheet.save(path, format="PNG")
    return drawn


__all__ = [
    "FIRED_QUANTILE",
    "FIRED_THRESHOLD",
    "REFERENCE_FLOOR",
    "Explanation",
    "FiredPattern",
    "PartGroup",
    "contact_sheet",
    "explain_image",
    "located_parts",
    "predict",
    "reference_scores",
    "training_quantiles",
    "write_heatmap",
]
