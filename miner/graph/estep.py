"""E-step sums and M-step updates of one layer (docs/method.md §5.2 and §5.4).

Per image and pattern the E-step yields seven numbers; their sums over images (and ranks) are all
the M-step needs:

* ``Σ_c phi·c / s̃²`` (x, y) and ``Σ_c phi`` for the move of mu, where ``phi = r·A`` and
  ``r = g / max(Σ_V'' g_V''(q) + tau, 1e-7)`` (the within-filter competition, exact, see
  :func:`miner.graph.evidence.box_sum`);
* ``Σ_c g·A``, ``Σ_c g·A·c`` (x, y) and ``Σ_c g·A·|c|²`` for the new sigma.
"""

from __future__ import annotations

import torch

from miner.graph.evidence import unit_offsets
from miner.graph.inference import (
    Evaluation,
    LayerParams,
    background,
    candidate_competition,
    candidate_grids,
    evaluate,
    grid_position,
    windows,
)
from miner.graph.kernels import compiled_kernels_enabled, estep_sums_cpu

#: columns of :func:`estep_terms`
MU_X, MU_Y, PHI, W, WX, WY, WR2 = range(7)


def estep_terms(params: LayerParams, ev: Evaluation) -> torch.Tensor:
    """``[n, P, 7]`` per-image E-step terms (columns named by the module constants)."""
    comp = candidate_competition(params, ev)
    tau = background(params, ev)[:, None, None, None]
    r = ev.g / (comp + tau).clamp(min=1e-7)
    phi = r * ev.evidence
    s = ev.s
    n, p, grid, _ = s.shape
    # offsets are h_V times a pattern-independent unit grid, so every sum is one matmul against
    # the unit grid's basis [1, u_x, u_y, |u|²] followed by a per-pattern scale
    unit = unit_offsets(grid, dtype=s.dtype, device=s.device)
    uy, ux = torch.meshgrid(unit, unit, indexing="ij")
    basis = torch.stack([torch.ones_like(ux), ux, uy, ux**2 + uy**2], dim=-1).reshape(
        grid * grid, 4
    )
    pm = phi.reshape(n, p, grid * grid) @ basis[:, :3]  # [n, P, 3]
    sm = s.reshape(n, p, grid * grid) @ basis  # [n, P, 4]
    return _terms(params, ev.s_tilde, pm, sm)


def _terms(
    params: LayerParams, s_tilde: torch.Tensor, pm: torch.Tensor, sm: torch.Tensor
) -> torch.Tensor:
    """The seven terms from the unit-grid sums of phi ``pm [n, P, 3]`` and of s ``sm [n, P, 4]``."""
    h = params.h  # [P]: offsets = h_V * unit
    inv_var = h[None] / s_tilde**2
    return torch.stack(
        [
            pm[..., 1] * inv_var,
            pm[..., 2] * inv_var,
            pm[..., 0],
            sm[..., 0],
            sm[..., 1] * h,
            sm[..., 2] * h,
            sm[..., 3] * h**2,
        ],
        dim=-1,
    )


def estep_chunk(
    params: LayerParams, smoothed: torch.Tensor, upper_positions: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The E-step of one chunk of images: terms ``[n, P, 7]``, s̃ ``[n, P]``, and each pattern's
    position ``[n, P, 2]`` and score ``[n, P]`` (what parent selection reads).

    On the CPU one compiled pass computes them from the prior's factors, without the
    ``[n, P, G, G]`` prior, evidence, product and competition of :func:`estep_terms`.
    """
    if not compiled_kernels_enabled(smoothed.device):
        ev = evaluate(params, smoothed, upper_positions)
        position, score, _ = ev.best()
        return estep_terms(params, ev), ev.s_tilde, position, score
    n = smoothed.shape[0]
    cand = candidate_grids(params, n, upper_positions)
    lo, cell = windows(params, cand.centre)
    # background: tau · mean over patterns of Σ_c g, where Σ_c g = (Σ_y axis)(Σ_x scaled)
    tau = params.settings.tau * (cand.axis.sum(dim=2) * cand.scaled.sum(dim=2)).mean(dim=1)
    unit = unit_offsets(params.settings.grid, dtype=smoothed.dtype, device=smoothed.device)
    pm, sm, arg, score = estep_sums_cpu(
        smoothed, cand.xs, cand.ys, cand.axis, cand.scaled, lo, cell, tau, unit
    )
    position = grid_position(cand.centre, cand.offsets, arg)
    return _terms(params, cand.s_tilde, pm, sm), cand.s_tilde, position, score


def m_step(
    params: LayerParams,
    sums: torch.Tensor,
    s_tilde_min: float,
    iteration: int,
    density: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """New ``mu [P, 2]`` and ``sigma [P]`` from the image-summed terms ``sums [P, 7]``.

    ``mu += sigma_min(t)² · Σ phi·c/s̃² / max(Σ phi, 1e-8)`` with
    ``sigma_min(t) = min s̃ / t^(1/4)``, kept on the map; ``sigma`` is the g·A-weighted standard
    deviation of the candidate offsets of the current window (per axis, averaged), clipped to
    ``sigma_clip / sqrt(density)``. A pattern that saw no evidence keeps its sigma.
    """
    g = params.geometry
    sigma_min2 = (s_tilde_min / iteration**0.25) ** 2
    step = sums[:, [MU_X, MU_Y]] / sums[:, PHI : PHI + 1].clamp(min=1e-8)
    mu = params.mu + sigma_min2 * step
    bound = torch.tensor([g.width - 1, g.height - 1], dtype=mu.dtype, device=mu.device)
    mu = torch.minimum(mu.clamp(min=0.0), bound)
    w = sums[:, W]
    seen = w > 0
    wsafe = w.clamp(min=1e-30)
    mean = sums[:, [WX, WY]] / wsafe[:, None]
    var = (sums[:, WR2] / wsafe - (mean**2).sum(dim=1)).clamp(min=0.0) / 2.0
    sigma = torch.where(seen, var.sqrt(), params.sigma)
    lo, hi = params.settings.sigma_clip
    scale = 1.0 / density**0.5
    return mu, sigma.clamp(lo * scale, hi * scale)


__all__ = ["MU_X", "MU_Y", "PHI", "WR2", "WX", "WY", "W", "estep_chunk", "estep_terms", "m_step"]
