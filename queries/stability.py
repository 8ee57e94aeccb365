"""Location instability of patterns and raw filters (docs/method.md §7.1 and §7.3; lower is better).

For a pattern (or a raw filter with its arg-max unit) take its top-k images by score among those
that show landmark j; ``d_I = ‖landmark_j − position_I‖ / diagonal``; the instability for j is the
standard deviation of ``d_I`` over those images; a pattern's instability is the mean over its
landmarks, and a layer's the mean over its top patterns, ranked by the mean of their top-k scores.

The *signed* variant (docs/method.md §7.3) measures the spread of the 2-D offset landmark − position
instead, in the frame where each image's chosen mirror is undone: √(var x + var y) / diagonal. A
point that never moves scores there exactly the spread of the landmark itself, so a detector only
beats it by moving with the part. :class:`TopKAccumulator` computes both while streaming over
images, holding only the top-k images of every pattern and landmark; :func:`fixed_point_instability`
scores the fixed-point controls.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explgraph.core.errors import InputError
from queries.streaming import TopKAccumulator


@dataclass(frozen=True)
class InstabilityResult:
    """Instability of one set of patterns (a layer's graph nodes, or its raw filters)."""

    mean: float  # over the ranked top patterns
    per_pattern: torch.Tensor  # [P] instability (NaN where no landmark had enough images)
    ranked: torch.Tensor  # [n_top] indices of the patterns that were averaged
    n_landmarks: int


def pattern_instability(
    positions: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    *,
    diagonal: float,
    top_k: int = 20,
    min_images: int = 2,
) -> torch.Tensor:
    """Instability of every pattern, batched over patterns.

    Args:
        positions: ``[N, P, 2]`` inferred positions in image pixels.
        scores: ``[N, P]`` inference scores (higher = fires more strongly).
        landmarks: ``[N, J, 2]`` landmark positions in the same pixel frame.
        visible: ``[N, J]`` bool, whether landmark j is shown in image n.
        diagonal: the image diagonal in pixels that distances are divided by.
        top_k: images per pattern and landmark.
        min_images: landmarks with fewer visible images than this are left out.

    Returns:
        ``[P]`` mean over landmarks of the std of normalised distances (NaN if no landmark counted).
    """
    n_images, n_patterns, _ = positions.shape
    if landmarks.shape[0] != n_images or visible.shape != landmarks.shape[:2]:
        raise InputError("landmarks and positions must cover the same images")
    per_landmark = []
    for j in range(landmarks.shape[1]):  # a handful of landmarks; every pattern at once
        shown = visible[:, j]
        n_shown = int(shown.sum())
        if n_shown < min_images:
            continue
        k = min(top_k, n_shown)
        masked = scores.masked_fill(~shown[:, None], float("-inf"))
        top = masked.topk(k, dim=0).indices  # [k, P]
        picked = positions.gather(0, top[..., None].expand(k, n_patterns, 2))  # [k, P, 2]
        target = landmarks[top, j]  # [k, P, 2]
        distance = (picked - target).norm(dim=-1) / diagonal
        per_landmark.append(distance.std(dim=0, unbiased=False))
    if not per_landmark:
        return torch.full((n_patterns,), float("nan"))
    return torch.stack(per_landmark).mean(dim=0)


def rank_by_top_scores(scores: torch.Tensor, top_k: int = 20) -> torch.Tensor:
    """Indices of patterns sorted by the mean of their top-k scores, best first."""
    k = min(top_k, scores.shape[0])
    return scores.topk(k, dim=0).values.mean(dim=0).argsort(descending=True)


def layer_instability(
    positions: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    *,
    diagonal: float,
    n_top: int,
    top_k: int = 20,
) -> InstabilityResult:
    """Mean instability of the ``n_top`` best-ranked patterns that have a measurable value."""
    per_pattern = pattern_instability(
        positions, scores, landmarks, visible, diagonal=diagonal, top_k=top_k
    )
    order = rank_by_top_scores(scores, top_k)
    order = order[~per_pattern[order].isnan()][:n_top]
    mean = float(per_pattern[order].mean()) if order.numel() else float("nan")
    return InstabilityResult(
        mean=mean, per_pattern=per_pattern, ranked=order, n_landmarks=int(landmarks.shape[1])
    )


def filter_argmax_positions(
    maps: torch.Tensor, stride: float, rf_offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-filter baseline: each filter's arg-max unit as a pixel position, and its value.

    Args:
        maps: ``[N, C, H, W]`` activations (or normalised mass).

    Returns:
        positions ``[N, C, 2]`` (x, y pixels) and scores ``[N, C]``.
    """
    n, c, _, width = maps.shape
    values, flat = maps.reshape(n, c, -1).max(dim=-1)
    ys = torch.div(flat, width, rounding_mode="floor")
    xs = flat - ys * width
    units = torch.stack([xs, ys], dim=-1).to(maps.dtype)
    return units * stride + rf_offset, values


def fixed_point_grid(size: int, cells: int = 8) -> torch.Tensor:
    """``[cells², 2]`` cell centres of a ``cells × cells`` grid over the crop, (x, y) pixels."""
    centres = (torch.arange(cells, dtype=torch.float32) + 0.5) * size / cells
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def fixed_point_instability(
    points: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    flipped: torch.Tensor | None,
    *,
    size: int,
    diagonal: float,
    min_images: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unsigned and signed instability of "patterns" that never move (docs/method.md §7.3).

    A fixed point ``p`` sits at ``p`` in the frame the image was read in (``flipped`` images
    read mirrored, so at ``size − p_x`` in the original frame): with the graph's mirror
    choices it is the strongest static detector. A point has no score, so it is measured over
    every image that shows the landmark.

    Args:
        points: ``[Q, 2]`` the fixed points (pixels).
        landmarks: ``[N, J, 2]``; visible ``[N, J]``; flipped ``[N]`` bool or ``None``.

    Returns:
        ``unsigned [Q, J]`` and ``signed [Q, J]`` (NaN for landmarks with too few images).
    """
    points = points.float()
    n = landmarks.shape[0]
    flags = torch.zeros(n, dtype=torch.bool) if flipped is None else flipped.to(torch.bool)
    px = torch.where(flags[:, None], size - points[None, :, 0], points[None, :, 0])  # [N, Q]
    pos = torch.stack([px, points[None, :, 1].expand(n, -1)], dim=-1)  # [N, Q, 2]
    unsigned = torch.full((points.shape[0], landmarks.shape[1]), float("nan"))
    signed = unsigned.clone()
    for j in range(landmarks.shape[1]):  # a handful of landmarks; every point at once
        shown = visible[:, j].to(torch.bool)
        if int(shown.sum()) < min_images:
            continue
        off = (landmarks[shown, j][:, None, :].float() - pos[shown]) / diagonal  # [n_j, Q, 2]
        unsigned[:, j] = off.norm(dim=-1).std(dim=0, unbiased=False)
        off[..., 0] *= torch.where(flags[shown], -1.0, 1.0)[:, None]
        signed[:, j] = off.var(dim=0, unbiased=False).sum(dim=-1).sqrt()
    return unsigned, signed


__all__ = [
    "InstabilityResult",
    "TopKAccumulator",
    "filter_argmax_positions",
    "fixed_point_grid",
    "fixed_point_instability",
    "layer_instability",
    "pattern_instability",
    "rank_by_top_scores",
]
