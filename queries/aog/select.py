"""Which latent patterns a part template keeps (docs/method.md §8), as table operations.

A candidate pattern V of a template has an offset ``Delta_V = part - p̂_V`` (crop pixels), a
confidence (its score on the annotated image over its training mean score, capped) and a spread
of that offset: over the template's annotations (or, with one annotation, the pattern's own
positional sigma: its deformation range) and, weighed in, over the images where it fires,
measured against the consensus of the template's other candidates there (no part annotation is
needed on those images). Its weight is ``confidence * exp(-spread² / (2 sigma_k²))`` with
``sigma_k`` the voting kernel's sigma. Per layer the sorted weights are cut at their knee (the
point farthest below the chord from the first to the last weight, Kneedle-style), which is
recorded with the template.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from explgraph.core.errors import InputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
ORIENTATIONS = ("appearance", "votes", "graph")
APPEARANCE_MAPS = ("all", "winner")
VOTE_WEIGHTINGS = ("confidence", "equal")
READINGS = ("joint", "template_fit")


@dataclass(frozen=True)
class SelectionSettings:
    """Parameters of candidate retrieval, selection and voting; every one recorded with the AOG.

    Attributes:
        kernel_width: full width at half maximum of the voting kernel, pixels at a 224 px input
            (scaled with the model's input size).
        radius: candidates must fire within this fraction of the input size of the part. 0.15
            (0.5 before round 3): under rotation and articulation a far pattern's offset to
            the part is brittle. Chosen on the dev seeds by the mean AOG / best-baseline ratio
            over head, foot, body and beak, toy CNN and MobileNetV2 (20 runs): 0.15 gave
            0.678, 0.1 0.685, 0.25 0.690; 0.5 was worse on four of the five dev heads
            (docs/faithfulness.md).
        min_confidence: a pattern "fires" when its score is at least this share of its mean
            training score (candidates on the annotated image; voters on a new image).
        confidence_cap: confidences above this are clipped, so one odd pattern cannot dominate.
        fire_weight: share of the firing-image spread in a candidate's spread (0: annotations
            only).
        min_cofiring: candidates of the template that must fire on an image for it to give a
            consensus.
        min_fire_images: firing images a candidate needs before that term counts.
        min_keep, max_keep: bounds of the per-layer knee cut.
        max_candidates: candidates per layer and template (the most confident).
        orientation: how localisation picks between an image and its mirror:
            ``"appearance"`` (default) reading and location together, the peak of vote map x
            the shots' part appearance (:mod:`queries.aog.appearance`; needs the shots'
            features: ``evaluate parts``; where they are not at hand, as in ``aog locate``,
            the stronger vote decides), ``"votes"`` the reading with the
            stronger vote (docs/method.md §8), ``"graph"`` the reading the explanatory graph
            explains better (its flip criterion, as in learning). Hard synthetic birds, dev
            seed 11, head, 5 draws, toy CNN: appearance 0.064, votes 0.113, graph 0.144;
            docs/faithfulness.md has the rest.
        appearance_power: exponent of the appearance similarity in the joint peak (0: the
            vote map alone picks the location, across both readings). Dev seed 11 head: 4
            (0.064 toy, 0.129 MobileNetV2) beat 1 (0.083, 0.145); 8 beat 4 on all eight dev
            runs of round 2 (toy and MobileNetV2, head and tail, seeds 11 and 12; e.g.
            MobileNetV2 head 0.113 vs 0.119, toy tail 0.276 vs 0.289 on seed 11).
        appearance_pool: how the shots' similarities combine: ``"max"`` (default) the best
            shot, ``"mean"`` all shots (dev round 2: within 1% of ``max`` at power 8, mixed).
        appearance_map: the vote map the appearance check weighs, per reading: ``"all"``
            (default) the sum of every template's votes, so the part may sit in the pose of
            any shot; ``"winner"`` only the strongest template's map (rounds 1 and 2). On the
            dev seeds the winner's map fell below 5% of the best vote at the true head in
            10-21% of test objects, which no appearance can repair; the sum in 2-6%
            (docs/faithfulness.md, round 3). AOGs stored before this setting keep ``winner``.
        part_radius, max_radius: size the candidates' radius to the part: each template's
            radius is its shots' mean distance from the part to the nearest other part
            annotated on the same image, clipped to [radius, max_radius] of the input size
            (:func:`queries.aog.build.template_radius`); shots with no other part keep
            ``radius``. On by default: on the dev seeds the wing's and tail's errors fell with
            a wider radius and the head's stayed level (docs/faithfulness.md, item 5, change
            2). AOGs stored before it read as off.
        distance_sigma: above 0, a candidate's weight is multiplied by
            exp(-d² / (2 (distance_sigma x input size)²)), d its offset to the part: the
            authors' soft distance prior (PG: 70 px of 224 ≈ 0.31). 0 (default): not used
            (dev seeds: the head lost 16%; change 3).
        vote_weighting: a voter's amplitude: ``"confidence"`` (default) template weight x
            capped confidence; ``"equal"`` the template weight alone, as the authors' code
            votes (no gain on the dev seeds; change 4).
        reading: how the appearance check picks the reading: ``"joint"`` (default) the joint
            arg-max; ``"template_fit"`` the reading whose best template fits better (PG's OR
            score, :mod:`queries.aog.fit`), the appearance then placing the part within it
            (worse on the dev seeds; change 5).
        anchor: search each template's patterns on a new image around their places on the
            template's shot (:mod:`queries.aog.anchor`, PG's re-search) instead of around
            their dataset prior μ; needs the shots' features, so ``evaluate parts`` only
            (worse on the dev seeds; change 6).
    """

    kernel_width: float = 35.0
    radius: float = 0.15
    min_confidence: float = 0.5
    confidence_cap: float = 4.0
    fire_weight: float = 0.5
    min_cofiring: int = 3
    min_fire_images: int = 2
    min_keep: int = 1
    max_keep: int = 40
    max_candidates: int = 300
    orientation: str = "appearance"
    appearance_power: float = 8.0
    appearance_pool: str = "max"
    appearance_map: str = "all"
    distance_sigma: float = 0.0
    vote_weighting: str = "confidence"
    reading: str = "joint"
    anchor: bool = False
    part_radius: bool = True
    max_radius: float = 0.3

    def __post_init__(self) -> None:
        checks = [
            (self.kernel_width > 0, "kernel_width must be positive"),
            (0 < self.radius <= 2, "radius must be in (0, 2]"),
            (0 < self.max_radius <= 2, "max_radius must be in (0, 2]"),
            (self.min_confidence >= 0, "min_confidence must be non-negative"),
            (self.appearance_power >= 0, "appearance_power must be non-negative"),
            (self.appearance_pool in ("max", "mean"), "appearance_pool must be max or mean"),
            (
                self.appearance_map in APPEARANCE_MAPS,
                f"appearance_map must be one of {', '.join(APPEARANCE_MAPS)}",
            ),
            (self.confidence_cap > 0, "confidence_cap must be positive"),
            (self.distance_sigma >= 0, "distance_sigma must be non-negative"),
            (self.vote_weighting in VOTE_WEIGHTINGS, "vote_weighting must be confidence or equal"),
            (self.reading in READINGS, "reading must be joint or template_fit"),
            (0 <= self.fire_weight <= 1, "fire_weight must be in [0, 1]"),
            (1 <= self.min_keep <= self.max_keep, "need 1 <= min_keep <= max_keep"),
            (self.max_candidates >= 1, "max_candidates must be at least 1"),
            (
                self.orientation in ORIENTATIONS,
                f"orientation must be one of {', '.join(ORIENTATIONS)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"AOG setting: {message}")

    def kernel_sigma(self, input_size: int) -> float:
        """Sigma of the voting Gaussian in pixels of an ``input_size`` input."""
        return self.kernel_width / FWHM_PER_SIGMA * input_size / 224.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionSettings:
        """Inverse of :meth:`to_dict` (unknown keys are ignored). Settings stored before the
        ``appearance_map`` setting existed read as ``"winner"``, the behaviour they were built
        and measured with."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("appearance_map", "winner")
        values.setdefault("part_radius", False)  # built before part-sized radii
        return cls(**values)


def knee_count(weights: np.ndarray, min_keep: int = 1, max_keep: int | None = None) -> int:
    """How many of the descending ``weights`` to keep: everything before the curve's knee.

    The knee is the point farthest below the chord joining the first and the last weight (both
    axes scaled to [0, 1]); zero weights are never kept.
    """
    values = np.sort(np.asarray(weights, dtype=np.float64))[::-1]
    positive = int((values > 0).sum())
    if positive == 0:
        return 0
    upper = positive if max_keep is None else min(positive, max_keep)
    lower = min(min_keep, upper)
    n = len(values)
    if n <= 2:
        return max(lower, min(upper, positive))
    span = values[0] - values[-1]
    if span <= 0:
        return upper  # all equal: no knee, keep as many as allowed
    y = (values - values[-1]) / span
    x = np.arange(n) / (n - 1)
    below = (1.0 - x) - y  # chord from (0, 1) to (1, 0) minus the curve
    knee = int(np.argmax(below))
    if below[knee] <= 0:
        return upper  # concave curve: the weights drop late, keep the allowed maximum
    return int(min(max(knee, lower), upper))


def firing_spread(
    deltas: pd.DataFrame,
    fires: pd.DataFrame,
    *,
    input_size: int,
    min_cofiring: int = 3,
    min_images: int = 2,
) -> pd.DataFrame:
    """Spread of each candidate's part prediction over the images where it fires.

    On an image, candidate V predicts the part at ``x_V + Delta_V``; the consensus is the median
    of the predictions of every candidate firing there. An image read through its mirror during
    mining shows its patterns mirrored, so each image is scored both ways (``x`` and
    ``size - x``) and keeps the orientation whose predictions agree better.

    Args:
        deltas: ``key``, ``dx``, ``dy``: the candidates and their offsets (crop pixels).
        fires: ``key``, ``image``, ``x``, ``y``, ``weight``: firing positions (crop pixels of
            each image's object crop, original orientation) and weights.
        input_size: side of the crop.
        min_cofiring: candidates needed on an image for a consensus.
        min_images: images needed for a candidate's spread.

    Returns:
        ``key``, ``fire_var`` (weighted mean squared deviation, px²) and ``fire_images``, for the
        candidates that have enough images.
    """
    empty = pd.DataFrame({"key": [], "fire_var": [], "fire_images": []})
    if len(fires) == 0 or len(deltas) == 0:
        return empty
    rows = fires.merge(deltas[["key", "dx", "dy"]], on="key", how="inner")
    counts = rows.groupby("image")["key"].transform("size")
    rows = rows[counts >= min_cofiring].copy()
    if len(rows) == 0:
        return empty
    variants = []
    for mirrored in (False, True):
        x = (input_size - rows["x"]) if mirrored else rows["x"]
        qx, qy = x + rows["dx"], rows["y"] + rows["dy"]
        frame = pd.DataFrame({"image": rows["image"], "qx": qx, "qy": qy})
        median = frame.groupby("image")[["qx", "qy"]].transform("median")
        err2 = (frame["qx"] - median["qx"]) ** 2 + (frame["qy"] - median["qy"]) ** 2
        variants.append(err2.to_numpy())
    err = np.stack(variants, axis=1)  # [rows, 2]
    total = pd.DataFrame(err, columns=["a", "b"]).groupby(rows["image"].to_numpy()).sum()
    use_mirror = (total["b"] < total["a"]).reindex(rows["image"].to_numpy()).to_numpy()
    rows["err2"] = np.where(use_mirror, err[:, 1], err[:, 0])
    rows["werr"] = rows["err2"] * rows["weight"]
    grouped = rows.groupby("key").agg(
        werr=("werr", "sum"), w=("weight", "sum"), fire_images=("image", "nunique")
    )
    grouped = grouped[(grouped["fire_images"] >= min_images) & (grouped["w"] > 0)]
    return pd.DataFrame(
        {
            "key": grouped.index.to_numpy(),
            "fire_var": (grouped["werr"] / grouped["w"]).to_numpy(),
            "fire_images": grouped["fire_images"].to_numpy(),
        }
    )


def score_candidates(
    candidates: pd.DataFrame, settings: SelectionSettings, input_size: int
) -> pd.DataFrame:
    """Add ``spread`` (px) and ``weight`` to the candidates of one template.

    ``candidates`` needs ``confidence``, ``prior_var`` (px²: spread over the annotations, or the
    pattern's own sigma²) and ``fire_var`` (px², NaN where unknown).
    """
    beta = settings.fire_weight
    fire = candidates["fire_var"].to_numpy(np.float64)
    prior = candidates["prior_var"].to_numpy(np.float64)
    var = np.where(np.isnan(fire), prior, (1.0 - beta) * prior + beta * np.nan_to_num(fire))
    sigma = settings.kernel_sigma(input_size)
    conf = np.clip(candidates["confidence"].to_numpy(np.float64), 0.0, settings.confidence_cap)
    out = candidates.copy()
    out["spread"] = np.sqrt(var)
    weight = conf * np.exp(-var / (2.0 * sigma**2))
    if settings.distance_sigma > 0:
        scale = settings.distance_sigma * input_size
        d2 = candidates["dx"].to_numpy(np.float64) ** 2 + candidates["dy"].to_numpy(np.float64) ** 2
        weight = weight * np.exp(-d2 / (2.0 * scale**2))
    out["weight"] = weight
    return out


def select_patterns(
    scored: pd.DataFrame, settings: SelectionSettings
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Keep, per layer, the candidates before the knee of their sorted weights.

    Returns:
        The kept rows (sorted by layer, then weight descending) and one record per layer:
        candidates, kept, the weight at the cut, and the rule.
    """
    kept, cuts = [], []
    for layer, rows in scored.groupby("layer", sort=True):
        ordered = rows.sort_values("weight", ascending=False, kind="stable")
        count = knee_count(ordered["weight"].to_numpy(), settings.min_keep, settings.max_keep)
        kept.append(ordered.iloc[:count])
        cuts.append(
            {
                "layer": str(layer),
                "candidates": len(ordered),
                "kept": int(count),
                "cut_weight": float(ordered["weight"].iloc[count - 1]) if count else None,
                "rule": "knee of sorted weights (farthest below the chord)",
            }
        )
    frame = pd.concat(kept, ignore_index=True) if kept else scored.iloc[:0]
    return frame, cuts


__all__ = [
    "SelectionSettings",
    "firing_spread",
    "knee_count",
    "score_candidates",
    "select_patterns",
]
