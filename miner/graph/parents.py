"""Parent (edge) selection (docs/method.md §5.3) as chunked matrix operations.

Scores of every child against every candidate parent are accumulated over image slices:
``d² = |a|² + |b|² - 2·a·bᵀ`` per image by a batched matmul, then
``score(V, V') = Σ_I exp(-d²/(2·mean d²))·S_V``. ``mean d²`` is one number per layer and
iteration: the mean over all children, candidates and images, itself computed from sums without
forming the pairs. All sums are all-reduced across ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from miner.graph import distributed
from miner.graph.settings import GraphSettings
from miner.models.spec import LayerGeometry


@dataclass
class ParentContext:
    """What learning a layer needs of the finished layer above.

    Attributes:
        geometry: the upper layer.
        ids: ``[K]`` long, upper pattern index of each candidate parent.
        positions: ``[n_local, K, 2]`` candidates' inferred positions on this rank's images.
        sigma: ``[K]`` candidates' sigma (upper map units).
        mean: ``[K, 2]`` candidates' mean inferred position p̄ (upper map units).
    """

    geometry: LayerGeometry
    ids: torch.Tensor
    positions: torch.Tensor
    sigma: torch.Tensor
    mean: torch.Tensor

    @property
    def size(self) -> int:
        """K, the number of candidate parents."""
        return int(self.ids.numel())


def candidate_pool(
    geometry: LayerGeometry,
    positions: torch.Tensor,
    soft: torch.Tensor,
    mean_position: torch.Tensor,
    num_images: int,
    settings: GraphSettings,
) -> torch.Tensor:
    """``[K]`` upper patterns eligible as parents (docs/method.md §5.3 step 1).

    Drops the ``static_drop`` share of patterns whose positions vary least over the images and
    those whose mean position lies within ``border·H`` of the map border, then keeps the
    ``candidate_pool`` with the highest total soft score.
    """
    p = positions.shape[1]
    sums = torch.cat([(positions**2).sum(dim=(0, 2))[:, None], soft.sum(dim=0)[:, None]], dim=1)
    sums = distributed.all_sum(sums.to(torch.float64))
    spread = sums[:, 0] / num_images - (mean_position.to(torch.float64) ** 2).sum(dim=1)
    total_soft = sums[:, 1]
    keep = torch.ones(p, dtype=torch.bool, device=positions.device)
    n_drop = int(p * settings.static_drop)
    if n_drop:
        keep[torch.argsort(spread, stable=True)[:n_drop]] = False
    b = settings.border * geometry.height
    x, y = mean_position[:, 0], mean_position[:, 1]
    inside = (x >= b) & (x <= geometry.width - 1 - b) & (y >= b) & (y <= geometry.height - 1 - b)
    keep &= inside
    ranked = torch.argsort(
        torch.where(keep, total_soft, torch.full_like(total_soft, -1.0)),
        descending=True,
        stable=True,
    )
    return ranked[: min(settings.candidate_pool, int(keep.sum()))]


# Blocks of parent scoring on the CPU: about 1 MiB of float32 (stays in cache across the three
# passes), summed over a few images before each float64 accumulation (as before the speed-up).
_CPU_BLOCK = 1 << 18
_IMAGES_PER_BLOCK = 8


def _pair_scores(
    a: torch.Tensor,
    a2: torch.Tensor,
    b: torch.Tensor,
    b2: torch.Tensor,
    child_scores: torch.Tensor,
    inv: float,
    work_elements: int,
) -> torch.Tensor:
    """``[P, K]`` float64 ``Σ_I exp(-inv·d²_I)·S_V^I`` over this rank's images.

    ``exp(-inv·(|a|² + |b|² - 2a·b))·S = exp(z)`` with ``z = (a, log S - inv|a|², 1) ·
    (2inv·b, 1, -inv|b|²)``: one batched matrix product with an inner size of 4 gives the whole
    exponent (the image's score folded in as a log; S = 0 gives exp(-inf) = 0), then an in-place
    exp and a matrix product with ones for the sum over images. Three passes over each
    ``[images, P, K]`` block, no temporaries; blocks are about 1 MiB on the CPU (they stay in
    cache) and ``work_elements`` on a GPU.
    """
    n, p, _ = a.shape
    k = b.shape[1]
    dtype, device = a.dtype, a.device
    left = torch.cat(
        [a, (torch.log(child_scores) - inv * a2)[..., None], torch.ones_like(a2)[..., None]], -1
    )
    right = torch.cat(
        [(2.0 * inv) * b, torch.ones_like(b2)[..., None], (-inv * b2)[..., None]], -1
    ).transpose(1, 2)  # [n, 4, K]
    budget = work_elements if device.type == "cuda" else _CPU_BLOCK
    step = max(1, min(n, _IMAGES_PER_BLOCK))  # images summed in dtype before the float64 add
    rows = max(1, min(p, budget // max(step * k, 1)))  # children per block
    ones = torch.ones((1, step), dtype=dtype, device=device)
    scores = torch.zeros((p, k), dtype=torch.float64, device=device)
    for p0 in range(0, p, rows):
        p1 = min(p0 + rows, p)
        for s in range(0, n, step):
            e = min(s + step, n)
            z = torch.bmm(left[s:e, p0:p1], right[s:e]).exp_()
            scores[p0:p1] += (ones[:, : e - s] @ z.view(e - s, -1)).view(p1 - p0, k)
    return scores


def select_parents(
    child_positions: torch.Tensor,
    child_scores: torch.Tensor,
    child_geometry: LayerGeometry,
    context: ParentContext,
    num_images: int,
    settings: GraphSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The M best co-moving candidates of every child (docs/method.md §5.3 step 2).

    Args:
        child_positions: ``[n_local, P, 2]`` children's inferred positions (map units).
        child_scores: ``[n_local, P]`` their scores S.
        child_geometry: the children's layer.
        context: the candidate parents.
        num_images: images over all ranks.
        settings: ``parents`` (M) and ``work_elements`` are used.

    Returns:
        ``index [P, M]`` into the candidate list (-1 where fewer than M candidates exist) and
        ``weight [P, M]`` the co-activation score of each chosen edge.
    """
    _, p, _ = child_positions.shape
    k = context.size
    m = settings.parents
    dtype, device = child_positions.dtype, child_positions.device
    if k == 0:
        return (
            torch.full((p, m), -1, dtype=torch.long, device=device),
            torch.zeros((p, m), dtype=dtype, device=device),
        )
    child_mean = distributed.all_sum(child_positions.sum(dim=0)) / num_images
    a = (child_positions - child_mean[None]) * child_geometry.stride  # pixels
    b = (context.positions - context.mean[None]) * context.geometry.stride
    a2 = (a**2).sum(dim=-1)  # [n, P]
    b2 = (b**2).sum(dim=-1)  # [n, K]
    moments = torch.stack(
        [a2.sum() * k, b2.sum() * p, 2.0 * (a.sum(dim=1) * b.sum(dim=1)).sum()]
    ).to(torch.float64)
    moments = distributed.all_sum(moments)
    mean_d2 = float((moments[0] + moments[1] - moments[2]) / (num_images * p * k))
    inv = 1.0 / (2.0 * max(mean_d2, 1e-12))
    scores = _pair_scores(a, a2, b, b2, child_scores, inv, settings.work_elements)
    scores = distributed.all_sum(scores)
    top = min(m, k)
    weight, index = torch.topk(scores, top, dim=1)
    weight = weight.to(dtype)
    if top < m:
        pad = m - top
        index = torch.cat([index, torch.full((p, pad), -1, dtype=torch.long, device=device)], dim=1)
        weight = torch.cat([weight, torch.zeros((p, pad), dtype=dtype, device=device)], dim=1)
    return index, weight


__all__ = ["ParentContext", "candidate_pool", "select_parents"]
