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
def best_candidates(maps, xs, ys, axis, scaled, per_filter, arg, score, soft):  # type: ignore[no-untyped-def]
    """For every image and pattern: the arg-max, max and sum of ``s = g·A`` over its grid.

    ``maps [n, C, H, W]`` smoothed evidence; ``xs``, ``ys [n, P, G]`` the candidate columns and
    rows (map units); ``g[y, x] = axis[y]·scaled[x]`` (``[n, P, G]`` each). ``A`` is read as the
    torch path reads it (normalise with aligned corners, then ``grid_sample``'s bilinear
    weights), so ``s`` is the same number; the arg-max is the first maximum in row-major order.
    Writes ``arg``, ``score``, ``soft`` (``[n, P]``).
    """
    n, _, h, w = maps.shape
    p_total, grid = xs.shape[1], xs.shape[2]
    dt = maps.dtype.type
    one = dt(1)
    zero = dt(0)
    to_x = dt(2.0 / max(w - 1, 1))
    to_y = dt(2.0 / max(h - 1, 1))
    half_x = dt((w - 1) / 2)
    half_y = dt((h - 1) / 2)
    xi = np.empty((grid, 2), dtype=np.int64)
    wx = np.empty((grid, 2), dtype=maps.dtype)
    yi = np.empty((grid, 2), dtype=np.int64)
    wy = np.empty((grid, 2), dtype=maps.dtype)
    for i in range(n):
        for p in range(p_total):
            f = p // per_filter
            for j in range(grid):
                ix = ((xs[i, p, j] * to_x - one) + one) * half_x
                k = int(np.floor(ix))
                iy = ((ys[i, p, j] * to_y - one) + one) * half_y
                m = int(np.floor(iy))
                for d in range(2):
                    inside = 0 <= k + d < w
                    xi[j, d] = k + d if inside else 0
                    wx[j, d] = ((one - (ix - k)) if d == 0 else (ix - k)) if inside else zero
                    inside = 0 <= m + d < h
                    yi[j, d] = m + d if inside else 0
                    wy[j, d] = ((one - (iy - m)) if d == 0 else (iy - m)) if inside else zero
            best = -np.inf
            where = 0
            total = zero
            for y in range(grid):
                r0 = yi[y, 0]
                r1 = yi[y, 1]
                a0 = wy[y, 0]
                a1 = wy[y, 1]
                gy = axis[i, p, y]
                for x in range(grid):
                    c0 = xi[x, 0]
                    c1 = xi[x, 1]
                    evidence = (
                        maps[i, f, r0, c0] * (a0 * wx[x, 0])
                        + maps[i, f, r0, c1] * (a0 * wx[x, 1])
                        + maps[i, f, r1, c0] * (a1 * wx[x, 0])
                        + maps[i, f, r1, c1] * (a1 * wx[x, 1])
                    )
                    s = (gy * scaled[i, p, x]) * evidence
                    total += s
                    if s > best:
                        best = s
                        where = y * grid + x
            arg[i, p] = where
            score[i, p] = best
            soft[i, p] = total
