"""Per semantic part: how many stable patterns each model has for it, and how stable they are.

Instability for part ``j`` is the metric of :mod:`queries.stability` (docs/method.md §7.1)
with that one landmark: over the pattern's top-k images showing the part, the standard deviation
of the distance between the pattern and the part, in box-diagonal units. A pattern is *stable* for
``j`` when that value is at most ``stable_threshold``. Counting those and comparing the mean of
each model's ``n_best`` most stable patterns tells which model knows a part better; the matches
tell whether the two models' stable patterns for a part are the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from queries.stability import pattern_instability


def part_instability(
    positions: Sequence[torch.Tensor],
    scores: Sequence[torch.Tensor],
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    *,
    top_k: int,
) -> torch.Tensor:
    """``[J, P]`` instability of every pattern (all layers, concatenated) for every part.

    Args:
        positions: per layer ``[N, P_l, 2]`` in box units.
        scores: per layer ``[N, P_l]``.
        landmarks: ``[N, J, 2]`` in box units; visible: ``[N, J]``.
        top_k: images per pattern and part.

    Returns:
        NaN where a part is shown on fewer than two images.
    """
    rows = []
    for j in range(landmarks.shape[1]):  # a handful of parts; all patterns of a layer at once
        per_layer = [
            pattern_instability(
                pos,
                score,
                landmarks[:, j : j + 1],
                visible[:, j : j + 1],
                diagonal=1.0,
                top_k=top_k,
            )
            for pos, score in zip(positions, scores, strict=True)
        ]
        rows.append(torch.cat(per_layer))
    if not rows:
        total = sum(int(p.shape[1]) for p in positions)
        return torch.zeros(0, total)
    return torch.stack(rows)


def _summary(values: torch.Tensor, threshold: float, n_best: int) -> tuple[int, float, float]:
    known = values[~values.isnan()]
    stable = known[known <= threshold]
    best = known.sort().values[:n_best]
    return (
        int(stable.numel()),
        float(stable.mean()) if stable.numel() else float("nan"),
        float(best.mean()) if best.numel() else float("nan"),
    )


def part_rows(
    names: Sequence[str],
    instability_a: torch.Tensor,
    instability_b: torch.Tensor,
    matched_a: torch.Tensor,
    matched_b: torch.Tensor,
    *,
    stable_threshold: float,
    n_best: int,
) -> list[dict[str, Any]]:
    """One row per part: stable counts, their mean instability, best-n means, matched share.

    Args:
        names: the parts, in the order of the instability rows.
        instability_a: ``[J, P_A]`` from :func:`part_instability`; instability_b likewise.
        matched_a: ``[P_A]`` bool, whether each A pattern has a match in B (any layer pair);
            matched_b likewise.
        stable_threshold: the most instability a stable pattern may have (box-diagonal units).
        n_best: how many of each model's most stable patterns ``best_*`` averages.
    """
    rows = []
    for j, name in enumerate(names):
        stable_a, mean_a, best_a = _summary(instability_a[j], stable_threshold, n_best)
        stable_b, mean_b, best_b = _summary(instability_b[j], stable_threshold, n_best)
        is_a = instability_a[j] <= stable_threshold  # NaN compares False
        is_b = instability_b[j] <= stable_threshold
        rows.append(
            {
                "part": name,
                "stable_a": stable_a,
                "stable_b": stable_b,
                "instability_a": mean_a,
                "instability_b": mean_b,
                "best_a": best_a,
                "best_b": best_b,
                "stable_a_matched": int((is_a & matched_a).sum()),
                "stable_b_matched": int((is_b & matched_b).sum()),
            }
        )
    return rows


__all__ = ["part_instability", "part_rows"]
