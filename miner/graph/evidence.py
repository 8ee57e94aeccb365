"""Evidence on a filter's map and the within-filter competition, as batched tensor ops.

* :func:`smooth` turns mass ``m`` into the smoothed evidence map once per chunk (separable,
  truncated Gaussian); :func:`sample` reads it at continuous positions by bilinear interpolation,
  which stands in for evaluating ``A(q) = Σ_u G(‖q-u‖) m(u)`` at each ``q`` (docs/method.md §2).
* :func:`box_sum` evaluates, at many query points, the sum over a filter's patterns of each
  pattern's piecewise-constant prior ``g`` (its value in the grid cell that holds the point, i.e.
  at its candidate nearest to the point; 0 outside its window). This is exact: a point lies in cell
  ``(floor((y-lo_y)/w), floor((x-lo_x)/w))`` of a pattern, so the sum is one gather per
  (query, overlapping pattern of the same filter) pair, at most ``P·N·G²`` per image, with no
  rasterisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from miner.graph.kernels import compiled_kernels_enabled, packed_box_sum_cpu

# Elements of one block of bilinear sampling points on the CPU (~1 MiB of float32).
_SAMPLE_BLOCK = 1 << 18


def unit_offsets(grid: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[grid]`` cell mid-points of ``grid + 1`` equal edges on ``[-1, 1]``."""
    return (torch.arange(grid, dtype=dtype, device=device) + 0.5) * (2.0 / grid) - 1.0


def gaussian_kernel(sigma: float, truncate: float, *, dtype: torch.dtype) -> torch.Tensor:
    """1-D Gaussian cut at ``truncate·sigma`` and normalised to sum 1 (so mass is kept)."""
    radius = max(1, math.ceil(truncate * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def _band(size: int, kernel: torch.Tensor) -> torch.Tensor:
    """``[size, size]`` matrix that convolves a vector with ``kernel`` under zero padding."""
    r = (kernel.numel() - 1) // 2
    idx = torch.arange(size, device=kernel.device)
    diff = idx[None, :] - idx[:, None] + r  # column minus row, shifted into the kernel
    inside = (diff >= 0) & (diff <= 2 * r)
    return torch.where(inside, kernel[diff.clamp(0, 2 * r)], torch.zeros((), dtype=kernel.dtype))


def smooth(mass: torch.Tensor, sigma: float, truncate: float) -> torch.Tensor:
    """Smooth ``[n, C, H, W]`` maps with the truncated Gaussian (zero padding: no mass outside).

    Done as two banded matrix products ``K_H · m · K_Wᵀ``, which BLAS runs far faster than a
    depth-wise convolution over thousands of single-channel maps.
    """
    _, _, h, w = mass.shape
    k = gaussian_kernel(sigma, truncate, dtype=mass.dtype).to(mass.device)
    return torch.matmul(torch.matmul(_band(h, k), mass), _band(w, k).T)


def sample(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear read of each filter's own map at its own points.

    Args:
        maps: ``[n, C, H, W]``.
        x, y: ``[n, C, ...]`` map-unit coordinates (same shape); outside the map reads 0.

    Returns:
        ``[n, C, ...]`` values.
    """
    n, c, h, w = maps.shape
    shape = x.shape
    gx = x.reshape(n * c, -1, 1) * (2.0 / max(w - 1, 1)) - 1.0
    gy = y.reshape(n * c, -1, 1) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)  # [n*C, Q, 1, 2]
    out = F.grid_sample(
        maps.reshape(n * c, 1, h, w),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return out.reshape(shape)


def sample_grids(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear read of each filter's own map on separable grids of points.

    Args:
        maps: ``[n, C, H, W]``.
        x: ``[n, C, Q, X]`` map-unit x of the columns of each of the ``Q`` grids per filter.
        y: ``[n, C, Q, Y]`` y of their rows; outside the map reads 0.

    Returns:
        ``[n, C, Q, Y, X]`` values, equal to :func:`sample` on the expanded grids; the
        normalised coordinates are computed once per row and column and written straight into
        the sampling grid, without expanded copies.
    """
    n, c, h, w = maps.shape
    q, nx, ny = x.shape[2], x.shape[3], y.shape[3]
    gx = (x * (2.0 / max(w - 1, 1)) - 1.0).reshape(n * c, q, 1, nx)
    gy = (y * (2.0 / max(h - 1, 1)) - 1.0).reshape(n * c, q, ny, 1)
    flat = maps.reshape(n * c, 1, h, w)
    out = torch.empty((n * c, 1, q * ny, nx), dtype=maps.dtype, device=maps.device)
    # maps in blocks whose sampling grid stays in cache on the CPU (one block on a GPU)
    per_map = q * ny * nx * 2
    block = max(1, _SAMPLE_BLOCK // per_map) if maps.device.type == "cpu" else n * c
    for b0 in range(0, n * c, block):
        b1 = min(b0 + block, n * c)
        grid = torch.empty((b1 - b0, q, ny, nx, 2), dtype=maps.dtype, device=maps.device)
        grid[..., 0] = gx[b0:b1]
        grid[..., 1] = gy[b0:b1]
        out[b0:b1] = F.grid_sample(
            flat[b0:b1],
            grid.view(b1 - b0, q * ny, nx, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
    return out.view(n, c, q, ny, nx)


def box_sum(
    qx: torch.Tensor,
    qy: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    values: torch.Tensor,
) -> torch.Tensor:
    """Sum of the piecewise-constant priors of every pattern of a filter at query points.

    Queries come as separable grids (one set of x and one of y per group), which is what both the
    candidate grids and the whole-map grid are. Only (group, pattern) pairs whose bounding boxes
    overlap are visited (found with one ``nonzero``); for each, the cell indices of the query
    rows and columns select table entries by two gathers, and the results are added into their
    group with ``index_add_`` (deterministic on the CPU, atomic on CUDA). A cell index outside
    ``[0, G)`` picks a padding row/column of zeros, so no mask is needed.

    Args:
        qx: ``[n, C, A, X]`` query x per group ``A`` (map units).
        qy: ``[n, C, A, Y]`` query y.
        lo: ``[n, C, N, 2]`` top-left corner (x, y) of each pattern's window in this image.
        cell: ``[C, N]`` cell width of each pattern's grid.
        values: ``[n, C, N, G, G]`` each pattern's value per cell (y, x).

    Returns:
        ``[n, C, A, Y, X]`` the sum at each query point.
    """
    n, c, a, nx = qx.shape
    ny = qy.shape[-1]
    npat, grid = values.shape[2], values.shape[-1]
    side = grid + 1
    hi = lo + (grid * cell)[None, :, :, None]
    over_x = (qx.amax(-1)[:, :, None, :] >= lo[..., 0, None]) & (
        qx.amin(-1)[:, :, None, :] < hi[..., 0, None]
    )
    over_y = (qy.amax(-1)[:, :, None, :] >= lo[..., 1, None]) & (
        qy.amin(-1)[:, :, None, :] < hi[..., 1, None]
    )
    i, f, p, g = (over_x & over_y).nonzero(as_tuple=True)  # (image, filter, pattern, group)
    inv = (1.0 / cell[f, p])[:, None]

    def cells(q: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
        # cell index along one axis; after clamping to [-1, grid] the remainder mod grid + 1
        # sends both outside values to ``grid``, the zero padding
        k = torch.sub(q, corner[:, None]).mul_(inv).floor_()
        return k.clamp_(-1, grid).remainder_(side).to(torch.int64)

    ix = cells(qx[i, f, g], lo[i, f, p, 0])  # [K, X]
    iy = cells(qy[i, f, g], lo[i, f, p, 1])  # [K, Y]
    table = torch.zeros((n, c, npat, side, side), dtype=values.dtype, device=values.device)
    table[..., :grid, :grid] = values
    first_row = ((i * c + f) * npat + p) * side
    rows = table.reshape(-1, side)[first_row[:, None] + iy]  # [K, Y, side]
    got = torch.gather(rows, 2, ix[:, None, :].expand(-1, ny, nx))  # [K, Y, X]
    out = torch.zeros((n * c * a, ny, nx), dtype=values.dtype, device=values.device)
    out.index_add_(0, (i * c + f) * a + g, got)
    return out.reshape(n, c, a, ny, nx)


def separable_box_sum(
    qx: torch.Tensor,
    qy: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    y_values: torch.Tensor,
    x_values: torch.Tensor,
) -> torch.Tensor:
    """:func:`box_sum` for priors that factorise, ``values[..., y, x] = y_values[y]·x_values[x]``.

    The sum at a group's query grid is ``Σ_p Y_p ⊗ X_p`` over the filter's patterns, where
    ``Y_p [Y]`` and ``X_p [X]`` are pattern p's factors read at the query rows and columns (0
    outside its window); that is a matrix product ``Yᵀ·X`` with the patterns as inner axis. Two
    layouts, the same products (sums reordered, ~1e-7 relative in float32):

    * few large grids (a whole map): every (group, pattern) pair, dense, one batched product;
    * many small grids (the candidate grids): only the overlapping pairs, found with one
      ``nonzero`` in destination order and packed into ``[groups, most overlaps, ·]`` so the
      products are again one batched product, with no scatter-add. On the CPU the compiled
      kernel of :mod:`miner.graph.kernels` walks the same pairs in place instead (2-3× faster).

    Args:
        qx, qy, lo, cell: as for :func:`box_sum`.
        y_values: ``[n, C, N, G]`` each pattern's row factor.
        x_values: ``[n, C, N, G]`` its column factor.
    """
    nx, ny = qx.shape[-1], qy.shape[-1]
    if nx * ny >= 4 * (nx + ny):
        return _dense_box_sum(qx, qy, lo, cell, y_values, x_values)
    if compiled_kernels_enabled(x_values.device):
        return packed_box_sum_cpu(qx, qy, lo, cell, y_values, x_values)
    return _packed_box_sum(qx, qy, lo, cell, y_values, x_values)


def _cell_reader(values: torch.Tensor) -> torch.Tensor:
    """``values [..., G]`` padded with a zero on each side and flattened: cell ``k`` of row ``r``
    is entry ``r·(G + 2) + k + 1``, and every cell index clamped to ``[-1, G]`` reads 0 outside."""
    return F.pad(values, (1, 1)).reshape(-1)


def _dense_box_sum(
    qx: torch.Tensor,
    qy: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    y_values: torch.Tensor,
    x_values: torch.Tensor,
) -> torch.Tensor:
    n, c, a, nx = qx.shape
    ny = qy.shape[-1]
    npat, grid = x_values.shape[2], x_values.shape[-1]
    inv = (1.0 / cell)[None, :, None, :, None]

    def factors(q: torch.Tensor, corner: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        # [n, C, A, N, Q]: cell index of every query against every pattern of the filter
        k = (q[:, :, :, None, :] - corner[:, :, None, :, None]).mul_(inv).floor_()
        k = k.clamp_(-1, grid).add_(1).to(torch.int64)
        table = F.pad(values, (1, 1))[:, :, None].expand(n, c, a, npat, grid + 2)
        return torch.gather(table, 4, k)

    ys = factors(qy, lo[..., 1], y_values).reshape(n * c * a, npat, ny)
    xs = factors(qx, lo[..., 0], x_values).reshape(n * c * a, npat, nx)
    return torch.bmm(ys.transpose(1, 2), xs).reshape(n, c, a, ny, nx)


def _packed_box_sum(
    qx: torch.Tensor,
    qy: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    y_values: torch.Tensor,
    x_values: torch.Tensor,
) -> torch.Tensor:
    n, c, a, nx = qx.shape
    ny = qy.shape[-1]
    npat, grid = x_values.shape[2], x_values.shape[-1]
    hi = lo + (grid * cell)[None, :, :, None]
    # [n, C, A, N]: group (destination) before pattern, so the pairs come out grouped by group
    over = (qx.amax(-1)[:, :, :, None] >= lo[:, :, None, :, 0]) & (
        qx.amin(-1)[:, :, :, None] < hi[:, :, None, :, 0]
    )
    over &= (qy.amax(-1)[:, :, :, None] >= lo[:, :, None, :, 1]) & (
        qy.amin(-1)[:, :, :, None] < hi[:, :, None, :, 1]
    )
    pairs = over.reshape(n * c * a, npat)
    degree = pairs.sum(dim=1)
    dest, p = pairs.nonzero(as_tuple=True)
    if dest.numel() == 0:
        return torch.zeros((n, c, a, ny, nx), dtype=x_values.dtype, device=x_values.device)
    slot = torch.arange(dest.numel(), device=dest.device) - (degree.cumsum(0) - degree)[dest]
    src = (dest // a) * npat + p  # (image, filter, pattern) row
    inv = (1.0 / cell).reshape(-1).index_select(0, src % (c * npat))[:, None]
    corner = lo.reshape(-1, 2).index_select(0, src)
    base = (src * (grid + 2) + 1)[:, None]
    most = int(degree.max())

    place = dest * most + slot  # row of each pair in the packed [groups · most, Q] layout

    def factors(q: torch.Tensor, axis: int, values: torch.Tensor) -> torch.Tensor:
        k = q.reshape(-1, q.shape[-1]).index_select(0, dest)
        k = k.sub_(corner[:, axis, None]).mul_(inv).floor_().clamp_(-1, grid)
        read = _cell_reader(values).take(k.to(torch.int64).add_(base))  # [K, Q]
        packed = torch.zeros(
            (pairs.shape[0] * most, q.shape[-1]), dtype=values.dtype, device=values.device
        )
        return packed.index_copy_(0, place, read).view(pairs.shape[0], most, q.shape[-1])

    ys = factors(qy, 1, y_values)
    xs = factors(qx, 0, x_values)
    return torch.bmm(ys.transpose(1, 2), xs).reshape(n, c, a, ny, nx)


def in_slices(
    n: int, per_item: int, budget: int, fn: Callable[[slice], torch.Tensor]
) -> torch.Tensor:
    """Run ``fn`` on image slices of at most ``budget // per_item`` images and concatenate."""
    step = max(1, budget // max(per_item, 1))
    if step >= n:
        return fn(slice(0, n))
    return torch.cat([fn(slice(i, min(i + step, n))) for i in range(0, n, step)], dim=0)


__all__ = [
    "box_sum",
    "gaussian_kernel",
    "in_slices",
    "sample",
    "sample_grids",
    "separable_box_sum",
    "smooth",
    "unit_offsets",
]
