"""How far an image is from the images a graph was mined on: the domain check.

A graph only explains images like the ones it was mined on. On anything else (a photo shown to
a graph mined on drawings, a cat shown to a graph of birds) the CNN still answers and the graph
still infers, so every explanation and localisation carries this check.

**The mining distribution, from the store.** Each pattern's reference is the ``quantile``
(default 0.9) of its scores on the mining images, and its best mining score is its highest one;
both come from its stored ``FIRES`` edges, which hold every pattern's best images (see
:func:`training_quantiles`), so the same edges give, for every mining image and layer, exactly:

- **fired**: the share of the layer's patterns that reach their reference on it;
- **beyond**: the share of the layer's patterns it is the only best mining image of (what
  "above the best score of every other mining image" is for a mining image itself).

**The check.** A new image gets the same shares per layer (its scores against the same
references and best scores). Its **excess** is its largest fired share over the mining images'
highest fired share of that layer. The image is **outside what the graph has seen** when the
excess is above 1: in some layer more patterns fire than on any mining image. A held-out image
of the mining domain is one more draw of the same distribution and tops N mining images in a
given layer with probability about 1/(N+1) (L/(N+1) over L layers, fewer where layers agree).
The beyond shares (patterns above the *highest* mining score, the top quantile) are reported
beside it with the shares' percentiles among the mining images, but do not decide: held-out
images of the domain read without their object box already pass many best scores. So is the
classifier's top-class confidence where the CNN classifies (reported, not used: a CNN trained
on one domain is confident on others, which is why the graph's own measure is needed).

Per-pattern and per-image work is batched tensor code; the store is read once per check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore, pattern_ids
from miner.data.records import ImageRecord
from miner.graph import ExplanatoryGraph, infer_graph
from miner.models.spec import LoadedModel
from queries.loaded import LoadedGraph

#: patterns are measured against at least this fraction of their layer's median reference
REFERENCE_FLOOR = 0.1
#: the reference of a pattern is this quantile of its scores on its mining images
FIRED_QUANTILE = 0.9


def reference_scores(reference: np.ndarray) -> np.ndarray:
    """``reference`` (one score per pattern of a layer) floored at :data:`REFERENCE_FLOOR` x the
    layer's median, so that a pattern that hardly ever fired in training does not count as
    firing on the slightest response."""
    positive = reference[reference > 0]
    floor = REFERENCE_FLOOR * float(np.median(positive)) if positive.size else 1e-12
    return np.maximum(reference, max(floor, 1e-12))


def training_quantiles(fires: pd.DataFrame, quantile: float) -> pd.Series:
    """Per pattern, the ``quantile`` of its scores on the mining images, from ``FIRES`` rows.

    ``fires`` has columns ``image``, ``pattern_id``, ``score`` (every FIRES edge of the model).
    A pattern's stored edges include its best images, so its r-th highest stored score is its
    r-th best training score, ``r = ceil((1 - quantile) * N)`` with N the mining images (those
    with any edge); r is capped at the pattern's stored count (a stricter quantile).
    """
    if fires.empty:
        return pd.Series(dtype=np.float64)
    n_images = int(fires["image"].nunique())
    rank = max(1, math.ceil((1.0 - quantile) * n_images))
    ordered = fires.sort_values(["pattern_id", "score"], ascending=[True, False])
    position = ordered.groupby("pattern_id").cumcount()
    stored = ordered.groupby("pattern_id")["score"].transform("size")
    picked = ordered[position == np.minimum(rank, stored) - 1]
    return picked.set_index("pattern_id")["score"].astype(np.float64)


def stored_firings(store: GraphStore, model_id: str) -> pd.DataFrame:
    """Every ``FIRES`` edge of ``model_id``: columns ``image``, ``pattern_id``, ``score``."""
    rows = store.query(
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE f.model_id = $m "
        "RETURN i.image_id AS image, p.pattern_id AS pattern_id, f.score AS score",
        {"m": model_id},
    )
    return pd.DataFrame(rows, columns=["image", "pattern_id", "score"])


def graph_pattern_ids(model_id: str, graph: ExplanatoryGraph) -> list[np.ndarray]:
    """The stored ids of every layer's patterns, in the graph's pattern order."""
    out = []
    for layer in graph.layers:
        filters = layer.filter.numpy()
        within = np.arange(layer.num_patterns) - filters * layer.per_filter
        out.append(pattern_ids(model_id, layer.geometry.name, filters, within))
    return out


@dataclass(frozen=True)
class MiningReference:
    """The mining distribution a graph's new images are measured against (module docstring).

    ``reference`` and ``best`` are per layer, in the graph's pattern order; ``shares`` holds
    one row per mining image: its fired share in every layer, then its beyond share in every
    layer (``[N, 2L]``).
    """

    quantile: float
    layer_names: list[str]
    reference: list[torch.Tensor]  # per layer [P]: the floored quantile score
    best: list[torch.Tensor]  # per layer [P]: the best mining score (at least the reference)
    shares: torch.Tensor  # [N, 2L] per mining image: fired shares, then beyond shares
    totals: torch.Tensor  # [N, 2] per mining image: fired and beyond share of all patterns

    @property
    def n_images(self) -> int:
        """The mining images the distribution holds."""
        return int(self.shares.shape[0])

    @property
    def highest_fired(self) -> torch.Tensor:
        """``[L]``: every layer's highest fired share among the mining images (at least one
        pattern's worth, so that ratios stay finite)."""
        n_layers = len(self.reference)
        return _at_least_one_pattern(self.shares[:, :n_layers].max(dim=0).values, self.sizes)

    @property
    def sizes(self) -> torch.Tensor:
        """``[L]``: the patterns of each layer."""
        return torch.tensor([float(r.numel()) for r in self.reference], dtype=torch.float64)


def _at_least_one_pattern(shares: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Shares floored at one pattern of their layer, so that ratios stay finite."""
    return torch.maximum(shares, 1.0 / sizes.clamp(min=1.0))


def mining_reference(
    store: GraphStore,
    model_id: str,
    graph: ExplanatoryGraph,
    *,
    quantile: float = FIRED_QUANTILE,
    fires: pd.DataFrame | None = None,
) -> MiningReference:
    """The mining distribution of ``model_id`` from its stored firings (one store read; pass
    ``fires`` from :func:`stored_firings` to reuse a read)."""
    fires = stored_firings(store, model_id) if fires is None else fires
    ids = graph_pattern_ids(model_id, graph)
    quantiles = training_quantiles(fires, quantile)
    best_stored = fires.groupby("pattern_id")["score"].max() if not fires.empty else quantiles
    references, bests = [], []
    for layer, layer_ids in zip(graph.layers, ids, strict=True):
        raw = quantiles.reindex(layer_ids).to_numpy(np.float64)
        raw = np.where(np.isnan(raw), layer.mean_score.double().numpy(), raw)
        reference = reference_scores(raw)
        best = np.fmax(best_stored.reindex(layer_ids).to_numpy(np.float64), reference)
        references.append(torch.from_numpy(reference))
        bests.append(torch.from_numpy(best))
    counts = _mining_counts(fires, ids, torch.cat(references), torch.cat(bests))
    sizes = torch.tensor([float(len(i)) for i in ids], dtype=torch.float64)
    n_layers = len(ids)
    shares = counts / torch.cat([sizes, sizes])[None]
    totals = torch.stack(
        [counts[:, :n_layers].sum(1), counts[:, n_layers:].sum(1)], dim=1
    ) / sizes.sum().clamp(min=1.0)
    names = [layer.geometry.name for layer in graph.layers]
    return MiningReference(quantile, names, references, bests, shares, totals)


def _mining_counts(
    fires: pd.DataFrame,
    ids: list[np.ndarray],
    reference: torch.Tensor,
    best: torch.Tensor,
) -> torch.Tensor:
    """``[N, 2L]``: per mining image and layer, the patterns that fired on it and those it is
    the only best image of, from its stored edges (module docstring)."""
    n_layers = len(ids)
    if fires.empty:
        return torch.zeros((1, 2 * n_layers), dtype=torch.float64)
    layer_of = torch.cat(
        [torch.full((len(layer_ids),), k, dtype=torch.int64) for k, layer_ids in enumerate(ids)]
    )
    every_id = pd.Index(np.concatenate(ids))
    pattern = torch.from_numpy(every_id.get_indexer(fires["pattern_id"]).astype(np.int64))
    image_codes, _ = pd.factorize(fires["image"])
    image = torch.from_numpy(image_codes.astype(np.int64))
    score = torch.tensor(fires["score"].to_numpy(np.float64))
    known = pattern >= 0
    pattern, image, score = pattern[known], image[known], score[known]
    n_images, n_patterns = int(image_codes.max()) + 1, len(every_id)
    fired = score >= reference[pattern]
    # a mining image is "beyond" the others for a pattern when no other image reaches its score
    top = torch.full((n_patterns,), -math.inf, dtype=torch.float64)
    top = top.scatter_reduce(0, pattern, score, reduce="amax")
    at_top = score >= top[pattern]
    holders = torch.bincount(pattern, weights=at_top.double(), minlength=n_patterns)
    alone = at_top & (holders[pattern] == 1) & fired
    cell = image * (2 * n_layers) + layer_of[pattern]
    counts = torch.bincount(cell, weights=fired.double(), minlength=n_images * 2 * n_layers)
    counts += torch.bincount(
        cell + n_layers, weights=alone.double(), minlength=n_images * 2 * n_layers
    )
    return counts.view(n_images, 2 * n_layers)


@dataclass(frozen=True)
class DomainCheck:
    """How far one image is from the mining images (module docstring)."""

    fired: float  # share of all patterns at or above their reference
    beyond: float  # share of all patterns above their best mining score
    fired_percentile: float  # share of mining images with at most this fired share
    beyond_percentile: float
    mining_fired: tuple[float, float, float]  # min, median, max over the mining images
    mining_beyond: tuple[float, float, float]
    excess: float  # the largest fired share of a layer over the mining images' highest
    excess_layer: str  # the layer of that share
    excess_share: float  # that share on this image
    quantile: float
    n_images: int
    confidence: tuple[str, float] | None = None  # the classifier's top class and probability

    @property
    def outside(self) -> bool:
        """More patterns fire in some layer than on any mining image: outside what the graph
        has seen."""
        return self.excess > 1.0

    def line(self) -> str:
        """The measure in one line."""
        confidence = (
            f"; classifier: {self.confidence[0]} {self.confidence[1]:.1%}"
            if self.confidence
            else ""
        )
        return (
            f"domain: {self.fired:.1%} of patterns fired (mining images "
            f"{_span(self.mining_fired)}, percentile {self.fired_percentile:.0%}), "
            f"{self.beyond:.1%} scored above their best mining score (mining images "
            f"{_span(self.mining_beyond)}, percentile {self.beyond_percentile:.0%}); "
            f"fired in {self.excess_layer}: {self.excess:.2f}x the most on a mining image"
            f"{confidence}"
        )

    def warning(self) -> str | None:
        """The one warning line when the image is outside what the graph has seen."""
        if not self.outside:
            return None
        return (
            f"warning: this image is outside what the graph has seen: {self.excess_share:.1%} of "
            f"the patterns of {self.excess_layer} fired, {self.excess:.2f}x the most on any of "
            f"its {self.n_images} mining images; read its patterns and part locations with care"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        spans = ("min", "median", "max")
        return {
            "fired_share": self.fired,
            "beyond_share": self.beyond,
            "fired_percentile": self.fired_percentile,
            "beyond_percentile": self.beyond_percentile,
            "mining_fired_share": dict(zip(spans, self.mining_fired, strict=True)),
            "mining_beyond_share": dict(zip(spans, self.mining_beyond, strict=True)),
            "excess": self.excess,
            "excess_layer": self.excess_layer,
            "excess_share": self.excess_share,
            "quantile": self.quantile,
            "mining_images": self.n_images,
            "confidence": (
                {"class": self.confidence[0], "probability": self.confidence[1]}
                if self.confidence
                else None
            ),
            "outside": self.outside,
            "line": self.line(),
            "warning": self.warning(),
        }


def _span(values: tuple[float, float, float]) -> str:
    return f"{values[0]:.1%}–{values[2]:.1%}, median {values[1]:.1%}"


def measure_domain(
    reference: MiningReference,
    scores: Sequence[torch.Tensor],
    confidences: Sequence[tuple[str, float] | None] | None = None,
) -> list[DomainCheck]:
    """The domain check of a batch of images from their graph scores (per layer ``[B, P]``)."""
    fired = [
        ((s.double() > 0) & (s.double() >= r[None])).double()
        for s, r in zip(scores, reference.reference, strict=True)
    ]
    beyond = [
        ((s.double() > 0) & (s.double() > b[None])).double()
        for s, b in zip(scores, reference.best, strict=True)
    ]
    fired_shares = torch.stack([f.mean(1) for f in fired], dim=1)  # [B, L]
    excess, where = (fired_shares / reference.highest_fired[None]).max(dim=1)
    at_share = fired_shares.gather(1, where[:, None])[:, 0].tolist()
    totals = torch.stack([torch.cat(fired, 1).mean(1), torch.cat(beyond, 1).mean(1)], dim=1)
    percentile = (reference.totals[None] <= totals[:, None]).double().mean(dim=1)  # [B, 2]
    spans = [_summary(reference.totals[:, k]) for k in range(2)]
    conf = list(confidences) if confidences is not None else [None] * fired_shares.shape[0]
    return [
        DomainCheck(
            fired=float(totals[i, 0]),
            beyond=float(totals[i, 1]),
            fired_percentile=float(percentile[i, 0]),
            beyond_percentile=float(percentile[i, 1]),
            mining_fired=spans[0],
            mining_beyond=spans[1],
            excess=float(excess[i]),
            excess_layer=reference.layer_names[int(where[i])],
            excess_share=at_share[i],
            quantile=reference.quantile,
            n_images=reference.n_images,
            confidence=conf[i],
        )
        for i in range(fired_shares.shape[0])
    ]


def class_probabilities(model: LoadedModel, crops: torch.Tensor) -> torch.Tensor | None:
    """The CNN's softmax ``[B, K]`` (on the CPU) for ``[B, 3, S, S]`` uint8 crops, ``None`` where
    the CNN does not classify. Its training mode is restored."""
    module = model.module
    was_training = module.training
    parameter = next(iter(module.parameters()), torch.zeros(0))
    mean = torch.tensor(model.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    inputs = ((crops.float() / 255.0 - mean) / std).to(parameter.device, parameter.dtype)
    try:
        module.eval()
        with torch.inference_mode():
            logits = module(inputs)
    finally:
        module.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        return None
    return torch.softmax(logits.float(), dim=1).cpu()


def class_name(model: LoadedModel, index: int) -> str:
    """The name of class ``index`` (``class i`` where the model names none)."""
    names = model.classes or []
    return names[index] if index < len(names) else f"class {index}"


def top_classes(model: LoadedModel, crops: torch.Tensor) -> list[tuple[str, float] | None]:
    """The CNN's top class and its softmax probability for each ``[B, 3, S, S]`` uint8 crop
    (``None`` each where the CNN does not classify). Its training mode is restored."""
    probabilities = class_probabilities(model, crops)
    if probabilities is None:
        return [None] * crops.shape[0]
    value, index = probabilities.max(dim=1)
    return [
        (class_name(model, i), float(v))
        for v, i in zip(value.tolist(), index.tolist(), strict=True)
    ]


def check_images(
    store: GraphStore,
    loaded: LoadedGraph,
    records: Sequence[ImageRecord],
    *,
    progress: Progress = NULL_PROGRESS,
) -> list[DomainCheck | None]:
    """The domain check of every record (``None`` where the image cannot be used), the graph
    inferred on them as mining read its images (normalised by the mining statistics).

    Raises:
        StoreError: the model was written without its mining statistics (one line naming the
            command; ``explgraph store upgrade`` or mining again adds them).
    """
    from miner.data.images import crop_to_box, load_image

    if not records:
        return []
    statistics = loaded.mining_statistics()
    # mirrored as `locate` extracts them (one cache entry); the graph reads them as mining did
    features = loaded.extract(list(records), mirror=True, min_box=1, progress=progress)
    kept = [int(image["index"]) for image in features.meta["images"]]
    if not kept:
        return [None] * len(records)
    source = LoadedGraph.normalised(features, statistics)
    inference = infer_graph(
        loaded.graph, source, 0, len(kept), device=str(loaded.device), flipped=None
    )
    size = loaded.input_size
    crops = torch.stack(  # one image read per record for the classifier
        [
            torch.from_numpy(
                np.array(crop_to_box(load_image(records[i].path), records[i].box, size))
            ).permute(2, 0, 1)
            for i in kept
        ]
    )
    reference = mining_reference(store, loaded.model_id, loaded.graph)
    checks = measure_domain(
        reference, [layer.score for layer in inference.layers], top_classes(loaded.model, crops)
    )
    out: list[DomainCheck | None] = [None] * len(records)
    for index, check in zip(kept, checks, strict=True):
        out[index] = check
    return out


def _summary(values: torch.Tensor) -> tuple[float, float, float]:
    return float(values.min()), float(values.median()), float(values.max())


__all__ = [
    "FIRED_QUANTILE",
    "REFERENCE_FLOOR",
    "DomainCheck",
    "MiningReference",
    "check_images",
    "class_name",
    "class_probabilities",
    "graph_pattern_ids",
    "measure_domain",
    "mining_reference",
    "reference_scores",
    "stored_firings",
    "top_classes",
    "training_quantiles",
]
