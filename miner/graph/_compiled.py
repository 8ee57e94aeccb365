"""The numba source of :mod:`miner.graph.kernels` (imported only when a kernel is first used).

Three kernels share three building blocks: bilinear weights of a grid's rows or columns, the
evidence on a candidate grid, and the within-filter competition at a grid. Branch-free where the
outcome is random (overlap tests, cell bounds): mispredicted branches, not arithmetic, were the
cost of the first version.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _axis_weights(coords, to_unit, half, size, index, weight):  # type: ignore[no-untyped-def]
    """Bilinear corners and weights of ``coords [G]`` (map units) on an axis of ``size`` units.

    The arithmetic is the torch path's: normalise with aligned corners, then ``grid_sample``'s
    un-normalise and corner weights; a corner off the map gets weight 0 (and a safe index).
    """
    one = coords.dtype.type(1)
    zero = coords.dtype.type(0)
    for j in range(coords.shape[0]):
        at = ((coords[j] * to_unit - one) + one) * half
        k = int(np.floor(at))
        for d in range(2):
            inside = 0 <= k + d < size
            index[j, d] = k + d if inside else 0
            weight[j, d] = ((one - (at - k)) if d == 0 else (at - k)) if inside else zero


@numba.njit(cache=True, nogil=True, inline="always")
def _evidence(plane, xi, wx, yi, wy, out):  # type: ignore[no-untyped-def]
    """``out [Y, X]``: the bilinear reads of one map ``plane [H, W]`` at a separable grid."""
    for y in range(out.shape[0]):
        r0 = yi[y, 0]
        r1 = yi[y, 1]
        a0 = wy[y, 0]
        a1 = wy[y, 1]
        for x in range(out.shape[1]):
            c0 = xi[x, 0]
            c1 = xi[x, 1]
            out[y, x] = (
                plane[r0, c0] * (a0 * wx[x, 0])
                + plane[r0, c1] * (a0 * wx[x, 1])
                + plane[r1, c0] * (a1 * wx[x, 0])
                + plane[r1, c1] * (a1 * wx[x, 1])
            )


@numba.njit(cache=True, nogil=True, inline="always")
def _competition(qx, qy, lo_x, lo_y, hi_x, hi_y, inv, y_padded, x_padded, hits, xf, yf, out):  # type: ignore[no-untyped-def]
    """``out [Y, X]``: Σ over one filter's patterns of their factorised prior at a query grid.

    ``lo_*``, ``hi_*``, ``inv`` ``[N]`` and ``*_padded [N, G + 2]`` (a zero on each side, so a
    cell index clamped to ``[-1, G]`` reads 0 outside the window) describe the filter's patterns.
    The overlap test is the torch path's, on the same values; patterns are summed in order.
    """
    nx = qx.shape[0]
    ny = qy.shape[0]
    npat = lo_x.shape[0]
    grid = x_padded.shape[1] - 2
    xmin = qx[0]
    xmax = xmin
    for j in range(1, nx):
        xmin = min(xmin, qx[j])
        xmax = max(xmax, qx[j])
    ymin = qy[0]
    ymax = ymin
    for j in range(1, ny):
        ymin = min(ymin, qy[j])
        ymax = max(ymax, qy[j])
    m = 0
    for p in range(npat):
        hits[m] = p
        m += (xmax >= lo_x[p]) & (xmin < hi_x[p]) & (ymax >= lo_y[p]) & (ymin < hi_y[p])
    out[:, :] = 0
    for t in range(m):
        p = hits[t]
        lx = lo_x[p]
        ly = lo_y[p]
        w = inv[p]
        for j in range(nx):
            v = (qx[j] - lx) * w
            k = int(v)
            k -= v < k  # floor
            xf[j] = x_padded[p, min(max(k, -1), grid) + 1]
        for j in range(ny):
            v = (qy[j] - ly) * w
            k = int(v)
            k -= v < k
            yf[j] = y_padded[p, min(max(k, -1), grid) + 1]
        for y in range(ny):
            for x in range(nx):
                out[y, x] += yf[y] * xf[x]


@numba.njit(cache=True, nogil=True)
def packed_box_sum(qx, qy, lo_x, lo_y, hi_x, hi_y, inv, y_padded, x_padded, out):  # type: ignore[no-untyped-def]
    """``out [n, C, A, Y, X]``: the competition at every group's query grid (see kernels)."""
    n, c, a, nx = qx.shape
    ny = qy.shape[3]
    npat = x_padded.shape[2]
    xf = np.empty(nx, dtype=x_padded.dtype)
    yf = np.empty(ny, dtype=x_padded.dtype)
    hits = np.empty(npat, dtype=np.int64)
    for i in range(n):
        for f in range(c):
            for g in range(a):
                _competition(
                    qx[i, f, g],
                    qy[i, f, g],
                    lo_x[i, f],
                    lo_y[i, f],
                    hi_x[i, f],
                    hi_y[i, f],
                    inv[f],
                    y_padded[i, f],
                    x_padded[i, f],
                    hits,
                    xf,
                    yf,
                    out[i, f, g],
                )


@numba.njit(cache=True, nogil=True)
def best_candidates(maps, xs, ys, axis, scaled, per_filter, arg, score, soft):  # type: ignore[no-untyped-def]
    """For every image and pattern: the arg-max, max and sum of ``s = g·A`` over its grid.

    ``maps [n, C, H, W]`` smoothed evidence; ``xs``, ``ys [n, P, G]`` the candidate columns and
    rows (map units); ``g[y, x] = axis[y]·scaled[x]`` (``[n, P, G]`` each). ``A`` and ``s`` are
    the torch path's numbers; the arg-max is the first maximum in row-major order. Writes
    ``arg``, ``score``, ``soft`` (``[n, P]``).
    """
    n, _, h, w = maps.shape
    p_total, grid = xs.shape[1], xs.shape[2]
    dt = maps.dtype.type
    to_x, half_x = dt(2.0 / max(w - 1, 1)), dt((w - 1) / 2)
    to_y, half_y = dt(2.0 / max(h - 1, 1)), dt((h - 1) / 2)
    xi = np.empty((grid, 2), dtype=np.int64)
    wx = np.empty((grid, 2), dtype=maps.dtype)
    yi = np.empty((grid, 2), dtype=np.int64)
    wy = np.empty((grid, 2), dtype=maps.dtype)
    evidence = np.empty((grid, grid), dtype=maps.dtype)
    for i in range(n):
        for p in range(p_total):
            _axis_weights(xs[i, p], to_x, half_x, w, xi, wx)
            _axis_weights(ys[i, p], to_y, half_y, h, yi, wy)
            _evidence(maps[i, p // per_filter], xi, wx, yi, wy, evidence)
            best = -np.inf
            where = 0
            total = dt(0)
            for y in range(grid):
                for x in range(grid):
                    s = (axis[i, p, y] * scaled[i, p, x]) * evidence[y, x]
                    total += s
                    if s > best:
                        best = s
                        where = y * grid + x
            arg[i, p] = where
            score[i, p] = best
            soft[i, p] = total


# long by design: numeric kernel
@numba.njit(cache=True, nogil=True)
def estep_sums(  # type: ignore[no-untyped-def]
    maps, xs, ys, axis, scaled, lo_x, lo_y, hi_x, hi_y, inv, y_padded, x_padded, tau, unit,
    phi_sums, s_sums, arg, score,
):  # fmt: skip
    """The E-step of every image and pattern in one pass (docs/method.md §5.2).

    Inputs as :func:`best_candidates` plus the competition's description of each filter's
    patterns (``lo_*``, ``hi_*`` ``[n, C, N]``, ``inv [C, N]``, ``*_padded [n, C, N, G + 2]``,
    the prior's factors padded), ``tau [n]`` and the unit grid ``unit [G]``. With
    ``r = g / max(Σ_V'' g_V'' + tau, 1e-7)`` and ``phi = r·A``, writes ``phi_sums [n, P, 3]``
    (Σ phi, Σ phi·u_x, Σ phi·u_y), ``s_sums [n, P, 4]`` (Σ s, Σ s·u_x, Σ s·u_y, Σ s·|u|²),
    and the arg-max and max of ``s`` as :func:`best_candidates` does.
    """
    n, c, h, w = maps.shape
    grid = xs.shape[2]
    npf = lo_x.shape[2]
    dt = maps.dtype.type
    to_x, half_x = dt(2.0 / max(w - 1, 1)), dt((w - 1) / 2)
    to_y, half_y = dt(2.0 / max(h - 1, 1)), dt((h - 1) / 2)
    floor = dt(1e-7)
    xi = np.empty((grid, 2), dtype=np.int64)
    wx = np.empty((grid, 2), dtype=maps.dtype)
    yi = np.empty((grid, 2), dtype=np.int64)
    wy = np.empty((grid, 2), dtype=maps.dtype)
    evidence = np.empty((grid, grid), dtype=maps.dtype)
    comp = np.empty((grid, grid), dtype=maps.dtype)
    xf = np.empty(grid, dtype=maps.dtype)
    yf = np.empty(grid, dtype=maps.dtype)
    hits = np.empty(npf, dtype=np.int64)
    for i in range(n):
        for f in range(c):
            for g in range(npf):
                p = f * npf + g
                _axis_weights(xs[i, p], to_x, half_x, w, xi, wx)
                _axis_weights(ys[i, p], to_y, half_y, h, yi, wy)
                _evidence(maps[i, f], xi, wx, yi, wy, evidence)
                _competition(
                    xs[i, p], ys[i, p], lo_x[i, f], lo_y[i, f], hi_x[i, f], hi_y[i, f],
                    inv[f], y_padded[i, f], x_padded[i, f], hits, xf, yf, comp,
                )  # fmt: skip
                best = -np.inf
                where = 0
                p0 = p1 = p2 = s0 = s1 = s2 = s3 = dt(0)
                for y in range(grid):
                    uy = unit[y]
                    for x in range(grid):
                        ux = unit[x]
                        prior = axis[i, p, y] * scaled[i, p, x]
                        s = prior * evidence[y, x]
                        phi = (prior / max(comp[y, x] + tau[i], floor)) * evidence[y, x]
                        p0 += phi
                        p1 += phi * ux
                        p2 += phi * uy
                        s0 += s
                        s1 += s * ux
                        s2 += s * uy
                        s3 += s * (ux * ux + uy * uy)
                        if s > best:
                            best = s
                            where = y * grid + x
                phi_sums[i, p, 0] = p0
                phi_sums[i, p, 1] = p1
                phi_sums[i, p, 2] = p2
                s_sums[i, p, 0] = s0
                s_sums[i, p, 1] = s1
                s_sums[i, p, 2] = s2
                s_sums[i, p, 3] = s3
                arg[i, p] = where
                score[i, p] = best
