"""How well a conv layer's raw filters stick to annotated parts (the interpretable-CNN claim).

Three figures, all on a filter's **top-k images** (by the filter's strongest response):

- *location instability* of the filter's arg-max unit (:func:`queries.stability.layer_instability`,
  docs/method.md §7.1), and its **fixed-point control**: the same images and ranking, but the
  filter's position replaced by one constant point (its mean arg-max position over its top-k
  images). The control measures only how much the landmarks themselves move; a filter that
  tracks a part scores below it.
- *part purity*: in each top-k image, the annotated part nearest to the filter's arg-max (``none``
  when no visible part lies within ``radius`` of it, a share of the crop diagonal); the filter's
  purity is the share of its top-k images whose nearest part is the filter's most frequent one
  (``none`` never counts as a part). A filter is *part-pure* when its purity is at least
  ``pure_at``; filters that never fire (top responses all zero) are never pure.

Everything is batched over filters and images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from queries.stability import filter_argmax_positions, layer_instability


@dataclass(frozen=True)
class FilterPartReport:
    """Raw-filter figures of one layer (see the module docstring)."""

    instability: float
    fixed_point_instability: float
    purity: torch.Tensor  # [C] per-filter purity
    dominant_part: list[str]  # [C] the most frequent nearest part ("none" / "dead" possible)
    pure_share: float  # share of filters with purity >= pure_at
    mean_purity: float
    dead: int  # filters whose top-k responses are all zero
    n_top: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (no per-filter tensors)."""
        return {
            "instability": self.instability,
            "fixed_point_instability": self.fixed_point_instability,
            "pure_share": self.pure_share,
            "mean_purity": self.mean_purity,
            "dead_filters": self.dead,
            "n_filters": int(self.purity.numel()),
            "n_top": self.n_top,
        }


def fixed_point_positions(
    positions: torch.Tensor, scores: torch.Tensor, top_k: int
) -> torch.Tensor:
    """Each filter's mean position over its top-k images, repeated for all images: ``[N, C, 2]``."""
    k = min(top_k, scores.shape[0])
    top = scores.topk(k, dim=0).indices  # [k, C]
    picked = positions.gather(0, top[..., None].expand(k, positions.shape[1], 2))
    return picked.mean(dim=0, keepdim=True).expand_as(positions)


def part_purity(
    positions: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    *,
    diagonal: float,
    top_k: int = 20,
    radius: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-filter purity, dominant part index (``J`` = none) and dead flag.

    Args:
        positions: ``[N, C, 2]`` arg-max positions (pixels); scores ``[N, C]``.
        landmarks: ``[N, J, 2]`` part positions (same pixels); visible ``[N, J]``.
        diagonal: crop diagonal in pixels; ``radius`` is a share of it.
    """
    n_images, n_filters, _ = positions.shape
    n_parts = landmarks.shape[1]
    k = min(top_k, n_images)
    top_scores, top = scores.topk(k, dim=0)  # [k, C]
    picked = positions.gather(0, top[..., None].expand(k, n_filters, 2))  # [k, C, 2]
    marks = landmarks[top]  # [k, C, J, 2]
    distance = (picked[:, :, None, :] - marks).norm(dim=-1)  # [k, C, J]
    distance = distance.masked_fill(~visible[top], float("inf"))
    nearest_distance, nearest = distance.min(dim=-1)  # [k, C]
    nearest = torch.where(nearest_distance <= radius * diagonal, nearest, n_parts)
    counts = torch.zeros(n_filters, n_parts + 1, dtype=torch.long)
    counts.scatter_add_(1, nearest.T, torch.ones_like(nearest.T))
    part_counts = counts[:, :n_parts]
    best, dominant = part_counts.max(dim=1)
    dead = ~(top_scores > 0).any(dim=0)
    purity = torch.where(dead, torch.zeros_like(best), best).float() / k
    dominant = torch.where(best > 0, dominant, n_parts)
    return purity, dominant, dead


def filter_part_report(
    maps: torch.Tensor,
    landmarks: torch.Tensor,
    visible: torch.Tensor,
    part_names: list[str],
    *,
    stride: float,
    rf_offset: float,
    diagonal: float,
    top_k: int = 20,
    n_top: int | None = None,
    radius: float = 0.2,
    pure_at: float = 0.8,
) -> FilterPartReport:
    """Instability (with the fixed-point control) and part purity of a layer's raw filters.

    Args:
        maps: ``[N, C, h, w]`` rectified responses of the layer on ``N`` crops.
        landmarks, visible: parts in crop pixels ``[N, J, 2]`` and visibility ``[N, J]``.
        n_top: filters averaged for instability (the best-ranked by top-k score; default all).
    """
    positions, scores = filter_argmax_positions(maps, stride, rf_offset)
    n_filters = maps.shape[1]
    n_top = n_filters if n_top is None else n_top
    raw = layer_instability(
        positions, scores, landmarks, visible, diagonal=diagonal, n_top=n_top, top_k=top_k
    )
    fixed = fixed_point_positions(positions, scores, top_k)
    control = layer_instability(
        fixed, scores, landmarks, visible, diagonal=diagonal, n_top=n_top, top_k=top_k
    )
    purity, dominant, dead = part_purity(
        positions, scores, landmarks, visible, diagonal=diagonal, top_k=top_k, radius=radius
    )
    names = [*part_names, "none"]
    dominant_names = [
        "dead" if bool(d) else names[int(i)] for i, d in zip(dominant, dead, strict=True)
    ]
    return FilterPartReport(
        instability=raw.mean,
        fixed_point_instability=control.mean,
        purity=purity,
        dominant_part=dominant_names,
        pure_share=float((purity >= pure_at).float().mean()),
        mean_purity=float(purity.mean()),
        dead=int(dead.sum()),
        n_top=n_top,
    )


__all__ = ["FilterPartReport", "filter_part_report", "fixed_point_positions", "part_purity"]
