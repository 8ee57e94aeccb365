"""Best-landmark stability: how well each pattern tracks the one landmark it follows best.

The signed instability of docs/method.md §7.3 averages a pattern's spread over every landmark,
so even a perfect detector of one part pays the spread of the others (queries/
part_detector_reference.py). Here each pattern is scored on its best-tracked landmark only: the
landmark with the smallest signed spread of landmark − position over the pattern's top images.
A perfect detector of that part scores 0, so nothing caps the figure. Beside it, on the same
landmark:

- ``frozen_prior``: the pattern frozen at its prior μ on the same images (a point that never
  moves in the mirror-normalised frame: it scores the landmark's own spread there);
- ``fixed_point``: a point that never moves, over every image showing the landmark (the
  landmark's spread over all images, not only the pattern's);
- ``perfect_part_detector``: 0 by construction (it sits on the landmark).

Choosing the landmark by the pattern's own spread favours the pattern; ``frozen_prior_own_best``
lets the frozen prior choose its own best landmark too (a stricter comparison). Patterns are
split by their best landmark into the centre (``body``, or the landmark nearest the crop centre
on average when there is none) and the off-centre ones, where a point that never moves is not
already good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

CENTRE_LANDMARK = "body"
GROUPS = ("all", "centre", "off_centre")


@dataclass(frozen=True)
class BestLandmarks:
    """Per scored pattern: spreads at its best landmark, which landmark, whether central."""

    patterns: torch.Tensor  # [m]
    frozen_prior: torch.Tensor  # [m] same landmark, same images
    frozen_prior_own_best: torch.Tensor  # [m] the frozen prior's own best landmark
    fixed_point: torch.Tensor  # [m] same landmark, every image showing it
    landmark: torch.Tensor  # [m] long
    centre: torch.Tensor  # [m] bool


def centre_landmarks(
    names: list[str], landmarks: torch.Tensor, visible: torch.Tensor, size: int
) -> torch.Tensor:
    """``[J]`` bool: the centre landmark, ``body`` when annotated, else the one whose mean
    visible position lies nearest the crop centre."""
    if CENTRE_LANDMARK in names:
        return torch.tensor([name == CENTRE_LANDMARK for name in names])
    shown = visible.to(landmarks.dtype)[..., None]
    mean = (landmarks * shown).sum(0) / shown.sum(0).clamp(min=1.0)  # [J, 2]
    distance = (mean - size / 2.0).norm(dim=-1)
    distance = torch.where(visible.any(0), distance, torch.full_like(distance, math.inf))
    return torch.arange(len(names)) == int(distance.argmin())


def best_landmarks(
    pattern_spreads: torch.Tensor,
    frozen_spreads: torch.Tensor,
    fixed: torch.Tensor,
    ranked: torch.Tensor,
    centre: torch.Tensor,
    n_top: int,
) -> BestLandmarks:
    """The ``n_top`` first patterns of ``ranked`` that track some landmark, at their best one.

    Args:
        pattern_spreads: ``[J, P]`` signed spread per landmark and pattern (NaN: too few images).
        frozen_spreads: ``[J, P]`` the same for the patterns frozen at μ.
        fixed: ``[J]`` signed spread of a fixed point over every image showing the landmark.
        ranked: pattern indices, best first (the graph's ranking).
        centre: ``[J]`` bool, the centre landmark(s).
        n_top: patterns kept.
    """
    filled = pattern_spreads.nan_to_num(nan=math.inf)
    best = filled.argmin(dim=0)  # [P]
    measurable = ~torch.isinf(filled.amin(dim=0))
    chosen = ranked[measurable[ranked]][:n_top]
    landmark = best[chosen]
    return BestLandmarks(
        patterns=pattern_spreads[landmark, chosen],
        frozen_prior=frozen_spreads[landmark, chosen],
        frozen_prior_own_best=frozen_spreads[:, chosen].nan_to_num(nan=math.inf).amin(dim=0),
        fixed_point=fixed[landmark],
        landmark=landmark,
        centre=centre[landmark],
    )


def _group_row(values: BestLandmarks, keep: torch.Tensor) -> dict[str, float]:
    """Means over the patterns of one group, the ratio to the frozen prior and the share of
    patterns that beat their frozen self."""
    n = int(keep.sum())
    if n == 0:
        return {"n_patterns": 0}
    ours, frozen = values.patterns[keep], values.frozen_prior[keep]
    mean_ours, mean_frozen = float(ours.mean()), float(frozen.mean())
    return {
        "n_patterns": n,
        "patterns": mean_ours,
        "frozen_prior": mean_frozen,
        "frozen_prior_own_best": float(values.frozen_prior_own_best[keep].mean()),
        "fixed_point": float(values.fixed_point[keep].nanmean()),
        "perfect_part_detector": 0.0,  # it sits on the landmark: 0 by construction
        "patterns_over_frozen": mean_ours / mean_frozen if mean_frozen > 0 else math.nan,
        "beat_frozen": float((ours < frozen).float().mean()),
    }


def summarise(values: BestLandmarks) -> dict[str, dict[str, float]]:
    """Per group (all, centre, off-centre) the row of :func:`_group_row`."""
    masks = {"all": torch.ones_like(values.centre), "centre": values.centre}
    masks["off_centre"] = ~values.centre
    return {group: _group_row(values, masks[group]) for group in GROUPS}


def pooled(parts: list[BestLandmarks]) -> BestLandmarks:
    """The patterns of several layers as one set (the overall figure pools them)."""
    names = [f.name for f in fields(BestLandmarks)]
    return BestLandmarks(**{name: torch.cat([getattr(p, name) for p in parts]) for name in names})


__all__ = [
    "CENTRE_LANDMARK",
    "GROUPS",
    "BestLandmarks",
    "best_landmarks",
    "centre_landmarks",
    "pooled",
    "summarise",
]
