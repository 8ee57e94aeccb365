"""Evidence sampling, smoothing and the within-filter competition against direct computation."""

from __future__ import annotations

import math

import torch

from miner.graph.evidence import box_sum, gaussian_kernel, in_slices, sample, smooth, unit_offsets


def test_unit_offsets_are_cell_midpoints() -> None:
    got = unit_offsets(6, dtype=torch.float64, device=torch.device("cpu"))
    edges = torch.linspace(-1, 1, 7, dtype=torch.float64)
    torch.testing.assert_close(got, (edges[:-1] + edges[1:]) / 2)


def test_smoothing_keeps_mass_and_matches_direct_sum() -> None:
    mass = torch.zeros(1, 2, 9, 9, dtype=torch.float64)
    mass[0, 0, 4, 4] = 2.0
    mass[0, 1, 3, 5] = 1.0
    out = smooth(mass, sigma=0.7, truncate=3.0)
    torch.testing.assert_close(out.sum(dim=(2, 3)), mass.sum(dim=(2, 3)))
    k = gaussian_kernel(0.7, 3.0, dtype=torch.float64)
    r = (k.numel() - 1) // 2
    assert r == math.ceil(2.1)
    # the value one unit right and two down of the spike is the product of the 1-D weights
    torch.testing.assert_close(out[0, 0, 6, 5], 2.0 * k[r + 2] * k[r + 1])


def test_sample_is_bilinear_on_each_filters_own_map() -> None:
    maps = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    x = torch.tensor([0.0, 1.25, 6.0, 3.5]).expand(2, 3, 4).to(torch.float64)
    y = torch.tensor([0.0, 2.5, 4.0, 0.75]).expand(2, 3, 4).to(torch.float64)
    got = sample(maps, x, y)
    for n in range(2):
        for c in range(3):
            for q in range(4):
                xf, yf = float(x[n, c, q]), float(y[n, c, q])
                x0, y0 = math.floor(xf), math.floor(yf)
                want = 0.0
                for dx in (0, 1):
                    for dy in (0, 1):
                        xi, yi = x0 + dx, y0 + dy
                        if 0 <= xi < 7 and 0 <= yi < 5:
                            wgt = (1 - abs(xf - xi)) * (1 - abs(yf - yi))
                            want += wgt * float(maps[n, c, yi, xi])
                assert abs(float(got[n, c, q]) - want) < 1e-9
    assert float(sample(maps, x - 10, y)[0, 0, 0]) == 0.0  # outside the map: no mass


def test_box_sum_matches_a_direct_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    n, c, npat, grid = 2, 3, 4, 6
    lo = torch.rand(n, c, npat, 2, generator=gen, dtype=torch.float64) * 8
    cell = 0.2 + torch.rand(c, npat, generator=gen, dtype=torch.float64)
    values = torch.rand(n, c, npat, grid, grid, generator=gen, dtype=torch.float64)
    qx = torch.rand(n, c, 2, 5, generator=gen, dtype=torch.float64) * 14
    qy = torch.rand(n, c, 2, 3, generator=gen, dtype=torch.float64) * 14
    got = box_sum(qx, qy, lo, cell, values)
    assert got.shape == (n, c, 2, 3, 5)
    for i in range(n):
        for f in range(c):
            for a in range(2):
                for yy in range(3):
                    for xx in range(5):
                        want = 0.0
                        for p in range(npat):
                            fx = (float(qx[i, f, a, xx]) - float(lo[i, f, p, 0])) / float(
                                cell[f, p]
                            )
                            fy = (float(qy[i, f, a, yy]) - float(lo[i, f, p, 1])) / float(
                                cell[f, p]
                            )
                            if 0 <= fx < grid and 0 <= fy < grid:
                                want += float(values[i, f, p, int(fy), int(fx)])
                        assert abs(float(got[i, f, a, yy, xx]) - want) < 1e-9


def test_in_slices_splits_and_keeps_order() -> None:
    calls: list[slice] = []

    def fn(sl: slice) -> torch.Tensor:
        calls.append(sl)
        return torch.arange(sl.start, sl.stop)

    out = in_slices(10, per_item=5, budget=15, fn=fn)
    assert torch.equal(out, torch.arange(10))
    assert [s.stop - s.start for s in calls] == [3, 3, 3, 1]
