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

