"""E-step terms and M-step updates against direct computation."""

from __future__ import annotations

import torch

from miner.graph.estep import MU_X, MU_Y, PHI, W, estep_terms, m_step
from miner.graph.evidence import smooth
from miner.graph.inference import (
    LayerParams,
    background,
    candidate_competition,
    evaluate,
)
from miner.graph.learning import initial_patterns
from tests.unit.test_graph_planted import planted, settings


def layer_params(scale_sigma: bool = True) -> tuple[LayerParams, torch.Tensor]:
    features, _ = planted(6)
    s = settings()
    geometry = features.layers[0]
    per_filter = s.patterns_per_filter(features.layers)[0]
    mu, sigma = initial_patterns(geometry, per_filter, s, 0)
    if scale_sigma:  # different windows per pattern
        sigma = sigma * torch.linspace(0.2, 1.0, sigma.numel())
    p = mu.shape[0]
    params = LayerParams(
        geometry,
        per_filter,
        mu,
        sigma,
        torch.full((p, 2), -1),
        torch.zeros(p, 2, 2),
        None,
        1.0,
        s,
    )
    return params, smooth(features.chunk(0, 0, 6), 0.5, 3.0)


def test_competition_sums_each_patterns_prior_at_its_nearest_candidate() -> None:
    params, smoothed = layer_params()
    ev = evaluate(params, smoothed, None)
    comp = candidate_competition(params, ev)
    grid, npf = params.settings.grid, params.per_filter
    h = params.h
    for i in (0, 5):
        for a in range(params.mu.shape[0]):
            f = a // npf
            for cy in (0, 3):
                for cx in (1, 5):
                    q = ev.centre[i, a] + torch.stack([ev.offsets[a, cx], ev.offsets[a, cy]])
                    want = 0.0
                    for b in range(f * npf, (f + 1) * npf):
                        rel = (q - (ev.centre[i, b] - h[b])) / (2 * h[b] / grid)
                        ix, iy = int(torch.floor(rel[0])), int(torch.floor(rel[1]))
                        if 0 <= ix < grid and 0 <= iy < grid:
                            want += float(ev.g[i, b, iy, ix])
                    assert abs(float(comp[i, a, cy, cx]) - want) < 1e-6 * max(1.0, want)
    # a pattern always competes with itself at its own candidates
    assert bool((comp >= ev.g * (1 - 1e-6)).all())


def test_estep_terms_match_direct_sums() -> None:
    params, smoothed = layer_params()
    ev = evaluate(params, smoothed, None)
    got = estep_terms(params, ev)
    comp = candidate_competition(params, ev)
    tau = background(params, ev)[:, None, None, None]
    phi = ev.g / (comp + tau).clamp(min=1e-7) * ev.evidence
    s = ev.s
    cx = ev.offsets[None, :, None, :]
    cy = ev.offsets[None, :, :, None]
    var = ev.s_tilde**2
    want = torch.stack(
        [
            (phi * cx).sum((2, 3)) / var,
            (phi * cy).sum((2, 3)) / var,
            phi.sum((2, 3)),
            s.sum((2, 3)),
            (s * cx).sum((2, 3)),
            (s * cy).sum((2, 3)),
            (s * (cx**2 + cy**2)).sum((2, 3)),
        ],
        dim=-1,
    )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_m_step_moves_towards_the_evidence_and_clips_sigma() -> None:
    params, _ = layer_params(scale_sigma=False)
    p = params.mu.shape[0]
    sums = torch.zeros(p, 7)
    sums[:, MU_X] = 2.0
    sums[:, MU_Y] = -1.0
    sums[:, PHI] = 4.0
    sums[0, W] = 1.0  # pattern 0 saw evidence concentrated on one offset: zero spread
    sums[0, 4] = 0.5
    sums[0, 6] = 0.25
    mu, sigma = m_step(params, sums, s_tilde_min=2.0, iteration=16, density=0.01)
    # sigma_min(t)² = (2 / 16^¼)² = 1 → mu moves by (0.5, -0.25), kept on the map
    moved = torch.clamp(params.mu + torch.tensor([0.5, -0.25]), min=0.0)
    moved = torch.minimum(moved, torch.tensor([19.0, 19.0]))
    torch.testing.assert_close(mu, moved)
    assert float(sigma[0]) == 0.1 / 0.01**0.5  # clipped from 0 up to 0.1/sqrt(density)
    torch.testing.assert_close(sigma[1:], params.sigma[1:])  # no evidence: sigma kept
