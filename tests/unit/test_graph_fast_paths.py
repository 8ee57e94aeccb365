"""The fast paths of issue 13 give what the general code gives, on random inputs."""

from __future__ import annotations

import pytest
import torch

from miner.graph import evidence
from miner.graph.estep import estep_chunk
from miner.graph.evidence import (
    _packed_box_sum,
    box_sum,
    sample,
    sample_grids,
    separable_box_sum,
)
from miner.graph.inference import LayerParams, evaluate, locate
from miner.graph.kernels import KERNELS_ENV, packed_box_sum_cpu
from miner.graph.settings import GraphSettings
from miner.models.spec import LayerGeometry


def test_separable_box_sum_equals_box_sum_on_outer_product_priors() -> None:
    gen = torch.Generator().manual_seed(3)
    n, c, npf, grid = 2, 3, 5, 4
    centre = torch.rand(n, c, npf, 2, generator=gen) * 12
    h = 0.5 + 2 * torch.rand(c, npf, generator=gen)
    lo = centre - h[None, :, :, None]
    cell = 2 * h / grid
    rows = torch.rand(n, c, npf, grid, generator=gen)
    cols = torch.rand(n, c, npf, grid, generator=gen)
    values = rows[..., :, None] * cols[..., None, :]
    qx = centre[..., 0:1] + torch.randn(n, c, npf, grid, generator=gen) * 2
    qy = centre[..., 1:2] + torch.randn(n, c, npf, grid + 1, generator=gen) * 2
    expected = box_sum(qx, qy, lo, cell, values)
    got = separable_box_sum(qx, qy, lo, cell, rows, cols)
    assert float(expected.abs().sum()) > 0  # the points do hit windows
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_whole_map_box_sum_takes_the_dense_path_and_equals_box_sum() -> None:
    """One large query grid per filter (what the explained-mass pass asks) goes through the dense
    batched product; it must give the pairwise sum, and nothing where no window lies."""
    gen = torch.Generator().manual_seed(5)
    n, c, npf, grid, side = 2, 3, 5, 6, 14
    centre = torch.rand(n, c, npf, 2, generator=gen) * side
    h = 0.5 + 3 * torch.rand(c, npf, generator=gen)
    lo = centre - h[None, :, :, None]
    cell = 2 * h / grid
    rows = torch.rand(n, c, npf, grid, generator=gen)
    cols = torch.rand(n, c, npf, grid, generator=gen)
    qx = torch.arange(side, dtype=torch.float32).expand(n, c, 1, side)
    qy = torch.arange(side + 2, dtype=torch.float32).expand(n, c, 1, side + 2)
    expected = box_sum(qx, qy, lo, cell, rows[..., :, None] * cols[..., None, :])
    got = separable_box_sum(qx, qy, lo, cell, rows, cols)
    assert int((expected == 0).sum()) > 0 and float(expected.sum()) > 0
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_box_sum_of_queries_far_from_every_window_is_zero() -> None:
    lo = torch.zeros(1, 2, 3, 2)
    cell = torch.full((2, 3), 0.5)
    rows = torch.ones(1, 2, 3, 4)
    qx = torch.full((1, 2, 3, 4), 50.0)
    got = separable_box_sum(qx, qx, lo, cell, rows, rows)
    assert got.shape == (1, 2, 3, 4, 4) and float(got.abs().sum()) == 0.0


def test_sample_grids_equals_sample_on_expanded_grids() -> None:
    gen = torch.Generator().manual_seed(4)
    maps = torch.rand(2, 3, 9, 11, generator=gen)
    x = torch.rand(2, 3, 4, 5, generator=gen) * 14 - 2  # some points off the map
    y = torch.rand(2, 3, 4, 6, generator=gen) * 12 - 2
    got = sample_grids(maps, x, y)
    expected = sample(
        maps, x[:, :, :, None, :].expand(2, 3, 4, 6, 5), y[:, :, :, :, None].expand(2, 3, 4, 6, 5)
    )
    assert torch.equal(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_kernel_equals_the_torch_packed_path(dtype: torch.dtype) -> None:
    """The numba kernel reads the same cells as the torch path (queries on cell edges included)
    and sums the same patterns; only the product accumulation order may differ."""
    gen = torch.Generator().manual_seed(11)
    n, c, npf, grid = 3, 4, 7, 6
    centre = torch.rand(n, c, npf, 2, generator=gen, dtype=dtype) * 10
    h = 0.5 + 2 * torch.rand(c, npf, generator=gen, dtype=dtype)
    lo = centre - h[None, :, :, None]
    cell = 2 * h / grid
    rows = torch.rand(n, c, npf, grid, generator=gen, dtype=dtype)
    cols = torch.rand(n, c, npf, grid, generator=gen, dtype=dtype)
    unit = (torch.arange(grid, dtype=dtype) + 0.5) * (2.0 / grid) - 1.0
    qx = centre[..., 0:1] + h[None, :, :, None] * unit  # candidate grids, as the E-step asks
    qy = centre[..., 1:2] + h[None, :, :, None] * unit
    qx[0, 0, 0] = lo[0, 0, 1, 0] + cell[0, 1] * torch.arange(grid, dtype=dtype)  # on cell edges
    qy[1, 2, 3, :2] = -30.0  # rows far off every window
    expected = _packed_box_sum(qx, qy, lo, cell, rows, cols)
    got = packed_box_sum_cpu(qx, qy, lo, cell, rows, cols)
    assert float(expected.abs().sum()) > 0 and int((expected == 0).sum()) > 0
    rtol, atol = (1e-6, 1e-7) if dtype == torch.float32 else (1e-12, 1e-14)
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)
    # the same zero pattern: no cell read by one path and missed by the other
    assert torch.equal(got == 0, expected == 0)


def test_candidate_grids_use_the_compiled_kernel_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = evidence.packed_box_sum_cpu

    def spy(*args: torch.Tensor) -> torch.Tensor:
        calls.append("compiled")
        return real(*args)

    monkeypatch.setattr(evidence, "packed_box_sum_cpu", spy)
    lo = torch.zeros(1, 2, 3, 2)
    cell = torch.full((2, 3), 0.5)
    rows = torch.ones(1, 2, 3, 4)
    qx = torch.rand(1, 2, 3, 4)
    on = separable_box_sum(qx, qx, lo, cell, rows, rows)
    assert calls == ["compiled"]
    monkeypatch.setenv(KERNELS_ENV, "torch")
    off = separable_box_sum(qx, qx, lo, cell, rows, rows)
    assert calls == ["compiled"]
    torch.testing.assert_close(on, off)


def _layer(dtype: torch.dtype, seed: int) -> tuple[LayerParams, torch.Tensor, torch.Tensor]:
    """A small layer with parents (some missing), its smoothed maps and the parents' positions;
    windows leave the map, and one filter has no evidence in one image."""
    gen = torch.Generator().manual_seed(seed)
    geometry = LayerGeometry("conv", 0, 4, 9, 11, 8.0, 40.0, 4.0)
    npf, grid, m = 3, 5, 2
    p = geometry.channels * npf
    params = LayerParams(
        geometry=geometry,
        per_filter=npf,
        mu=(torch.rand(p, 2, generator=gen) * torch.tensor([11.0, 9.0])).to(dtype),
        sigma=(0.5 + 2 * torch.rand(p, generator=gen)).to(dtype),
        parent_index=torch.randint(-1, 6, (p, m), generator=gen),
        parent_mean=(torch.rand(p, m, 2, generator=gen) * 5).to(dtype),
        upper_sigma=(0.5 + torch.rand(6, generator=gen)).to(dtype),
        ratio=2.0,
        settings=GraphSettings(grid=grid, dtype="float32" if dtype == torch.float32 else "float64"),
    )
    smoothed = torch.rand(3, 4, 9, 11, generator=gen, dtype=dtype)
    smoothed[1, 2] = 0.0
    upper = (torch.rand(3, 6, 2, generator=gen) * 5).to(dtype)
    return params, smoothed, upper


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_candidate_search_equals_evaluate_then_best(dtype: torch.dtype) -> None:
    """``locate`` on the CPU (one compiled pass) gives what ``evaluate(...).best()`` gives: the
    same positions and scores, the soft score up to summation order; parents, windows that
    leave the map, and maps with no evidence (every candidate ties at 0) included."""
    params, smoothed, upper = _layer(dtype, 21)
    npf = params.per_filter
    ev = evaluate(params, smoothed, upper)
    want_pos, want_score, want_soft = ev.best()
    centre, pos, score, soft = locate(params, smoothed, upper)
    assert torch.equal(centre, ev.centre)
    assert torch.equal(pos, want_pos)
    # float32: the very same numbers; float64: grid_sample rounds its weights in another order
    exact = dtype == torch.float32
    torch.testing.assert_close(score, want_score, rtol=0 if exact else 1e-14, atol=0)
    torch.testing.assert_close(soft, want_soft)
    assert float(want_score[1, 2 * npf : 3 * npf].abs().sum()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_estep_equals_the_torch_estep(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fused E-step (evidence, prior, competition, responsibilities and the seven sums in one
    pass) gives the torch E-step's terms, positions and scores."""
    params, smoothed, upper = _layer(dtype, 5)
    terms, s_tilde, pos, score = estep_chunk(params, smoothed, upper)
    monkeypatch.setenv(KERNELS_ENV, "torch")
    want_terms, want_s_tilde, want_pos, want_score = estep_chunk(params, smoothed, upper)
    assert float(want_terms[..., 2].abs().sum()) > 0  # responsibilities are not all zero
    assert torch.equal(s_tilde, want_s_tilde) and torch.equal(pos, want_pos)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(score, want_score, rtol=rtol, atol=0)
    torch.testing.assert_close(terms, want_terms, rtol=rtol, atol=rtol * 1e-2)


def test_kernels_cache_under_the_temporary_folder_when_numba_finds_no_writable_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only install with no writable home: numba refuses to cache (RuntimeError at
    import); the kernels then cache under the temporary folder instead of failing."""
    import sys

    import numba
    from numba.core import caching

    from miner.graph import kernels

    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    # only the user-provided folder may be used, and none is set: no locator is available
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [caching.UserProvidedCacheLocator])
    monkeypatch.delitem(sys.modules, "miner.graph._compiled", raising=False)
    monkeypatch.delattr(sys.modules["miner.graph"], "_compiled", raising=False)
    kernels._kernels.cache_clear()
    try:
        loaded = kernels._kernels()
        assert loaded is not None
        assert str(kernels.FALLBACK_CACHE) == numba.config.CACHE_DIR
        params, smoothed, upper = _layer(torch.float32, 3)
        ev = evaluate(params, smoothed, upper)
        assert torch.equal(locate(params, smoothed, upper)[1], ev.best()[0])
    finally:
        kernels._kernels.cache_clear()
