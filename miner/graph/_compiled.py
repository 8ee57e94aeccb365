"""The numba source of :mod:`miner.graph.kernels` (imported only when the kernel is first used)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def packed_box_sum(qx, qy, lo_x, lo_y, hi_x, hi_y, inv, y_padded, x_padded, out):  # type: ignore[no-untyped-def]
    """Write into ``out [n, C, A, Y, X]`` the sum of every overlapping pattern's ``Y_p ⊗ X_p``.

    ``*_padded [n, C, N, G + 2]`` are the factors with a zero on each side, so a cell index
    clamped to ``[-1, G]`` reads 0 outside the window. Branch-free where the outcome is random
    (overlap test, cell bounds): mispredicted branches, not arithmetic, were the cost.
    """
    n, c, a, nx = qx.shape
    ny = qy.shape[3]
    npat, grid = x_padded.shape[2], x_padded.shape[3] - 2
    xf = np.empty(nx, dtype=x_padded.dtype)
    yf = np.empty(ny, dtype=x_padded.dtype)
    acc = np.empty((ny, nx), dtype=x_padded.dtype)
    hits = np.empty(npat, dtype=np.int64)
    for i in range(n):
        for f in range(c):
            for g in range(a):
                xmin = qx[i, f, g, 0]
                xmax = xmin
                for j in range(1, nx):
                    xmin = min(xmin, qx[i, f, g, j])
                    xmax = max(xmax, qx[i, f, g, j])
                ymin = qy[i, f, g, 0]
                ymax = ymin
                for j in range(1, ny):
                    ymin = min(ymin, qy[i, f, g, j])
                    ymax = max(ymax, qy[i, f, g, j])
                # the torch path's overlap test on the same values, compacted without branches
                m = 0
                for p in range(npat):
                    hits[m] = p
                    m += (
                        (xmax >= lo_x[i, f, p])
                        & (xmin < hi_x[i, f, p])
                        & (ymax >= lo_y[i, f, p])
                        & (ymin < hi_y[i, f, p])
                    )
                acc[:, :] = 0
                for t in range(m):
                    p = hits[t]
                    lx = lo_x[i, f, p]
                    ly = lo_y[i, f, p]
                    w = inv[f, p]
                    for j in range(nx):
                        v = (qx[i, f, g, j] - lx) * w
                        k = int(v)
                        k -= v < k  # floor
                        xf[j] = x_padded[i, f, p, min(max(k, -1), grid) + 1]
                    for j in range(ny):
                        v = (qy[i, f, g, j] - ly) * w
                        k = int(v)
                        k -= v < k
                        yf[j] = y_padded[i, f, p, min(max(k, -1), grid) + 1]
                    for y in range(ny):
                        for x in range(nx):
                            acc[y, x] += yf[y] * xf[x]
                out[i, f, g] = acc


@numba.njit(cache=True, nogil=True)
def bilinear_grids(maps, gx, gy, out):  # type: ignore[no-untyped-def]
    """Write into ``out [n·C, Q, Y, X]`` each map's bilinear reads on its separable grids.

    ``gx [n·C, Q, X]``, ``gy [n·C, Q, Y]`` are normalised coordinates in ``[-1, 1]`` (align
    corners); outside the map reads 0. The arithmetic follows ``grid_sample`` (un-normalise,
    corner weights, four weighted reads), with each row's and column's weights computed once.
    """
    b, h, w = maps.shape
    q, nx = gx.shape[1], gx.shape[2]
    ny = gy.shape[2]
    one = maps.dtype.type(1)
    sx = maps.dtype.type((w - 1) / 2)
    sy = maps.dtype.type((h - 1) / 2)
    zero = maps.dtype.type(0)
    xi = np.empty((nx, 2), dtype=np.int64)
    wx = np.empty((nx, 2), dtype=maps.dtype)
    yi = np.empty((ny, 2), dtype=np.int64)
    wy = np.empty((ny, 2), dtype=maps.dtype)
    for m in range(b):
        for s in range(q):
            for j in range(nx):
                ix = (gx[m, s, j] + one) * sx
                k = int(np.floor(ix))
                for d in range(2):
                    inside = 0 <= k + d < w
                    xi[j, d] = k + d if inside else 0
                    wx[j, d] = ((one - (ix - k)) if d == 0 else (ix - k)) if inside else zero
            for j in range(ny):
                iy = (gy[m, s, j] + one) * sy
                k = int(np.floor(iy))
                for d in range(2):
                    inside = 0 <= k + d < h
                    yi[j, d] = k + d if inside else 0
                    wy[j, d] = ((one - (iy - k)) if d == 0 else (iy - k)) if inside else zero
            for yy in range(ny):
                r0 = yi[yy, 0]
                r1 = yi[yy, 1]
                a0 = wy[yy, 0]
                a1 = wy[yy, 1]
                for xx in range(nx):
                    c0 = xi[xx, 0]
                    c1 = xi[xx, 1]
                    out[m, s, yy, xx] = (
                        maps[m, r0, c0] * (a0 * wx[xx, 0])
                        + maps[m, r0, c1] * (a0 * wx[xx, 1])
                        + maps[m, r1, c0] * (a1 * wx[xx, 0])
                        + maps[m, r1, c1] * (a1 * wx[xx, 1])
                    )
