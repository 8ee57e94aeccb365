"""Compiled CPU kernel for the within-filter competition on many small grids.

On the CPU the candidate-grid competition (:func:`miner.graph.evidence.separable_box_sum` with
small grids) was bound by index bookkeeping, not arithmetic: the torch formulation gathers,
packs and scatters every overlapping (group, pattern) pair through a dozen full-size temporaries.
This kernel walks the same pairs in place, in one pass per filter and image, with the same
float arithmetic for the cell indices (so the same cells are read) and the patterns summed in
the same order; only the product accumulation differs from the batched matrix product (~1e-7
relative in float32).

It is compiled by numba on first use and cached on disk. GPU tensors keep the torch path, and so
does the CPU when ``EXPLGRAPH_KERNELS=torch`` is set (a switch for comparing the two).
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

#: environment switch: ``torch`` turns the compiled kernel off
KERNELS_ENV = "EXPLGRAPH_KERNELS"

log = logging.getLogger(__name__)


def compiled_kernels_enabled(device: torch.device) -> bool:
    """Whether the compiled kernel serves tensors on ``device``."""
    if device.type != "cpu" or os.environ.get(KERNELS_ENV, "").strip().lower() == "torch":
        return False
    return _kernels() is not None


#: where the kernels are cached when numba finds no writable folder of its own
FALLBACK_CACHE = Path(tempfile.gettempdir()) / "explgraph-numba"


@cache
def _kernels() -> Any:
    """The module of jitted kernels, or ``None`` where numba cannot be imported."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; kept for odd platforms
        log.warning("numba cannot be imported: the CPU runs the slower torch kernels")
        return None
    try:
        from miner.graph import _compiled
    except RuntimeError:
        # numba's disk cache found no writable folder (a read-only install and home): cache
        # under the temporary folder rather than fail
        numba.config.CACHE_DIR = str(FALLBACK_CACHE)  # type: ignore[attr-defined]
        log.info("numba found no writable cache folder; caching kernels in %s", FALLBACK_CACHE)
        from miner.graph import _compiled
    return _compiled


def packed_box_sum_cpu(
    qx: torch.Tensor,
    qy: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    y_values: torch.Tensor,
    x_values: torch.Tensor,
) -> torch.Tensor:
    """:func:`miner.graph.evidence.separable_box_sum` on CPU tensors, by the compiled kernel.

    Same arguments and result (``[n, C, A, Y, X]``). One thread: on several cores, run one
    single-thread rank per core (torchrun), which is also what torch's own ops do best here.
    """
    n, c, a, nx = qx.shape
    ny = qy.shape[-1]
    dtype = x_values.dtype
    out = torch.empty((n, c, a, ny, nx), dtype=dtype)
    queries = [t.detach().to(dtype).contiguous().numpy() for t in (qx, qy)]
    _loaded().packed_box_sum(*queries, *_pattern_cells(lo, cell, y_values, x_values), out.numpy())
    return out


def _loaded() -> Any:
    kernels = _kernels()
    if kernels is None:  # pragma: no cover - guarded by compiled_kernels_enabled
        raise RuntimeError("the compiled kernels need numba; pip install numba")
    return kernels


def _pattern_cells(
    lo: torch.Tensor, cell: torch.Tensor, y_values: torch.Tensor, x_values: torch.Tensor
) -> list[Any]:
    """The competition's description of every filter's patterns, as the kernels read it:
    window corners ``lo_x, lo_y``, far edges ``hi_x, hi_y`` ``[n, C, N]``, reciprocal cell width
    ``[C, N]`` (computed as the torch path computes them) and the factors zero-padded."""
    dtype = x_values.dtype
    grid = x_values.shape[-1]
    lo = lo.detach().to(dtype)
    hi = lo + (grid * cell)[None, :, :, None]
    inv = 1.0 / cell
    edges = [t.contiguous().numpy() for t in (lo[..., 0], lo[..., 1], hi[..., 0], hi[..., 1])]
    padded = [F.pad(t.detach(), (1, 1)).numpy() for t in (y_values, x_values)]
    return [*edges, inv.detach().to(dtype).contiguous().numpy(), *padded]


def best_candidates_cpu(
    maps: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    axis: torch.Tensor,
    scaled: torch.Tensor,
    per_filter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Arg-max, max and sum of ``s = g·A`` over every pattern's candidate grid, in one pass.

    What :meth:`miner.graph.inference.Evaluation.best` computes from the ``[n, P, G, G]`` prior and
    evidence, without building them: ``maps [n, C, H, W]`` (smoothed), candidate columns ``xs``
    and rows ``ys`` ``[n, P, G]`` in map units, and the prior's factors ``axis`` (rows) and
    ``scaled`` (columns) ``[n, P, G]``. The evidence and ``s`` are the same numbers as the torch
    path's; the sum may differ in float rounding (another order).

    Returns:
        ``arg [n, P]`` (row-major index into the grid), ``score [n, P]``, ``soft [n, P]``.
    """
    n, p, _ = xs.shape
    dtype = maps.dtype
    arg = torch.empty((n, p), dtype=torch.int64)
    score = torch.empty((n, p), dtype=dtype)
    soft = torch.empty((n, p), dtype=dtype)
    arrays = [t.detach().to(dtype).contiguous().numpy() for t in (maps, xs, ys, axis, scaled)]
    _loaded().best_candidates(*arrays, per_filter, arg.numpy(), score.numpy(), soft.numpy())
    return arg, score, soft


def estep_sums_cpu(
    maps: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    axis: torch.Tensor,
    scaled: torch.Tensor,
    lo: torch.Tensor,
    cell: torch.Tensor,
    tau: torch.Tensor,
    unit: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The E-step's per-pattern sums and the best candidate, in one compiled pass.

    What :func:`miner.graph.estep.estep_terms` and :meth:`Evaluation.best` read from the
    ``[n, P, G, G]`` prior, evidence and competition, without building them. ``maps``, ``xs``,
    ``ys``, ``axis``, ``scaled`` as for :func:`best_candidates_cpu`; ``lo [n, C, N, 2]`` and
    ``cell [C, N]`` the patterns' windows as for :func:`packed_box_sum_cpu`; ``tau [n]`` the
    background term; ``unit [G]`` the unit candidate grid.

    Returns:
        ``phi_sums [n, P, 3]`` (Σ phi, Σ phi·u_x, Σ phi·u_y), ``s_sums [n, P, 4]``
        (Σ s, Σ s·u_x, Σ s·u_y, Σ s·|u|²), ``arg [n, P]`` and ``score [n, P]``.
    """
    n, p, grid = xs.shape
    c, npf = cell.shape
    dtype = maps.dtype
    phi_sums = torch.empty((n, p, 3), dtype=dtype)
    s_sums = torch.empty((n, p, 4), dtype=dtype)
    arg = torch.empty((n, p), dtype=torch.int64)
    score = torch.empty((n, p), dtype=dtype)
    rows, cols = axis.reshape(n, c, npf, grid), scaled.reshape(n, c, npf, grid)
    arrays = [t.detach().to(dtype).contiguous().numpy() for t in (maps, xs, ys, axis, scaled)]
    _loaded().estep_sums(
        *arrays,
        *_pattern_cells(lo, cell, rows, cols),
        tau.detach().to(dtype).contiguous().numpy(),
        unit.detach().to(dtype).contiguous().numpy(),
        phi_sums.numpy(),
        s_sums.numpy(),
        arg.numpy(),
        score.numpy(),
    )
    return phi_sums, s_sums, arg, score


def warm_up(dtype: torch.dtype = torch.float32) -> None:
    """Load (or, the first time, compile) the kernels for ``dtype`` now rather than in the first
    call: about a second from numba's disk cache, several the first time (benchmarks call it
    before their clocks start)."""
    if not compiled_kernels_enabled(torch.device("cpu")):
        return
    q = torch.zeros((1, 1, 1, 2), dtype=dtype)
    values = torch.ones((1, 1, 1, 2), dtype=dtype)
    packed_box_sum_cpu(
        q, q, torch.zeros((1, 1, 1, 2), dtype=dtype), values[0, :, :, 0], values, values
    )
    grid = torch.zeros((1, 1, 2), dtype=dtype)
    best_candidates_cpu(torch.ones((1, 1, 2, 2), dtype=dtype), grid, grid, grid, grid, 1)


__all__ = [
    "KERNELS_ENV",
    "best_candidates_cpu",
    "compiled_kernels_enabled",
    "estep_sums_cpu",
    "packed_box_sum_cpu",
    "warm_up",
]
