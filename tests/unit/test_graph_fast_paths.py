"""The fast paths of issue 13 give what the general code gives, on random inputs."""

from __future__ import annotations

import torch

from miner.graph.evidence import box_sum, sample, sample_grids, separable_box_sum


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
