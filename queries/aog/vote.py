"""Gaussian voting for a part centre (docs/method.md §8), batched over images, patterns, templates.

Each voter k puts a Gaussian of amplitude ``a_k`` at its predicted part position ``c_k`` on a
``size x size`` grid of crop pixels (pixel ``(x, y)`` at integer coordinates); a template's map
is the sum over its voters. The Gaussian is separable, so a whole chunk of maps is one einsum of
per-axis profiles: no loop over voters or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VoteResult:
    """The winning location per image, and which template and voters produced it."""

    xy: torch.Tensor  # [n, 2] crop pixels
    template: torch.Tensor  # [n] long, winning template
    value: torch.Tensor  # [n] vote at the winner
    per_template: torch.Tensor  # [n, T] best vote of each template


def vote_maps(
    centres: torch.Tensor,
    amplitude: torch.Tensor,
    template: torch.Tensor,
    n_templates: int,
    *,
    size: int,
    sigma: float,
) -> torch.Tensor:
    """Sum every template's votes into maps ``[n, T, size, size]`` (rows y, columns x).

    Args:
        centres: ``[n, K, 2]`` predicted part positions (crop pixels, x, y).
        amplitude: ``[n, K]`` vote strengths (0 = does not vote).
        template: ``[K]`` long, the template each voter belongs to.
        n_templates: number of templates T.
        size: side of the crop.
        sigma: kernel sigma in pixels.
    """
    # pixel i covers [i, i + 1): the map samples pixel centres
    grid = torch.arange(size, dtype=centres.dtype, device=centres.device) + 0.5
    gx = torch.exp(-((grid[None, None, :] - centres[..., 0:1]) ** 2) / (2.0 * sigma**2))
    gy = torch.exp(-((grid[None, None, :] - centres[..., 1:2]) ** 2) / (2.0 * sigma**2))
    onehot = torch.nn.functional.one_hot(template.to(centres.device), n_templates).to(
        centres.dtype
    )  # [K, T]
    weights = amplitude[:, :, None] * onehot[None]  # [n, K, T]
    return torch.einsum("nkt,nky,nkx->ntyx", weights, gy, gx)


def best_vote(maps: torch.Tensor) -> VoteResult:
    """Arg-max over each template's map, then over templates (the part's OR node)."""
    n, t, height, width = maps.shape
    flat = maps.reshape(n, t, height * width)
    value, arg = flat.max(dim=2)  # [n, T]
    best_value, best_t = value.max(dim=1)
    pick = arg.gather(1, best_t[:, None])[:, 0]
    xy = torch.stack([(pick % width).to(maps.dtype), (pick // width).to(maps.dtype)], dim=-1) + 0.5
    return VoteResult(xy=xy, template=best_t, value=best_value, per_template=value)


def voter_contributions(
    centres: torch.Tensor,
    amplitude: torch.Tensor,
    at: torch.Tensor,
    *,
    sigma: float,
) -> torch.Tensor:
    """``[n, K]`` how much each voter adds to the map at ``at`` ``[n, 2]``: the explanation."""
    d2 = ((centres - at[:, None, :]) ** 2).sum(dim=-1)
    return amplitude * torch.exp(-d2 / (2.0 * sigma**2))


__all__ = ["VoteResult", "best_vote", "vote_maps", "voter_contributions"]
