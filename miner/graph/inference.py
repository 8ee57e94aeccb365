"""Top-down inference of patterns in images (docs/method.md §4), batched over images and patterns.

For a chunk of ``n`` images every pattern of a layer gets, in one set of tensor ops: its expected
position from its parents (precision-weighted shift, spread s̃ and parent agreement lambda), a
``GxG`` candidate grid in its window, the prior ``g`` and evidence ``A`` at each candidate, and
from ``s = g·A`` its position, score and soft score.

Flip at inference (docs/method.md §5.5): if ``flipped=None``, a graph learned with ``use_flip`` on a
source with mirrored features reads every image both ways at the top layer and keeps, per image,
the orientation its top patterns explain better (larger Σ_V log Σ_c g·A), then uses it for every
layer below; pass ``flipped=False``/``True`` or a ``[n]`` bool tensor to force it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from explgraph.core.errors import InputError, MiningError
from miner.graph.evidence import (
    in_slices,
    sample_grids,
    separable_box_sum,
    smooth,
    unit_offsets,
)
from miner.graph.kernels import best_candidates_cpu, compiled_kernels_enabled
from miner.graph.settings import GraphSettings
from miner.graph.types import (
    ExplanatoryGraph,
    FeatureSource,
    GraphInference,
    LayerInference,
    LayerPatterns,
)
from miner.models.spec import LayerGeometry

# Elements of one block of the node prior's per-parent temporaries on the CPU (~1 MiB of float32).
_PRIOR_BLOCK = 1 << 18


@dataclass
class LayerParams:
    """A layer's patterns in the form one pass needs (all on the compute device).

    ``parent_index`` indexes the rows of the upper-layer position array handed to the pass (the
    whole upper layer at inference, the candidate pool while learning); ``upper_sigma`` is indexed
    the same way and is in upper map units.
    """

    geometry: LayerGeometry
    per_filter: int
    mu: torch.Tensor  # [P, 2]
    sigma: torch.Tensor  # [P]
    parent_index: torch.Tensor  # [P, M] long, -1 = none
    parent_mean: torch.Tensor  # [P, M, 2] upper map units
    upper_sigma: torch.Tensor | None  # [Q]
    ratio: float  # stride of the layer above / stride of this layer
    settings: GraphSettings

    @property
    def half_window(self) -> float:
        """0.15·H: the widest window and the spread of a pattern without parents."""
        return self.settings.window * self.geometry.height

    @property
    def h(self) -> torch.Tensor:
        """``[P]`` window half-width h_V = min(0.15·H, 3·sigma_V)."""
        return torch.clamp(3.0 * self.sigma, max=self.half_window)


@dataclass
class Evaluation:
    """Prior and evidence of every pattern and candidate of one layer on ``n`` images."""

    centre: torch.Tensor  # [n, P, 2] expected position c_V
    s_tilde: torch.Tensor  # [n, P]
    offsets: torch.Tensor  # [P, G] candidate offsets along one axis (same for x and y)
    g: torch.Tensor  # [n, P, G, G] prior, (y, x)
    evidence: torch.Tensor  # [n, P, G, G] A at c_V + c
    row_factor: torch.Tensor  # [n, P, G] g = row_factor[y] · col_factor[x]
    col_factor: torch.Tensor  # [n, P, G]
    _s: torch.Tensor | None = field(default=None, repr=False)

    @property
    def s(self) -> torch.Tensor:
        """``[n, P, G, G]`` g·A (computed once)."""
        if self._s is None:
            self._s = self.g * self.evidence
        return self._s

    def best(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Position p̂ ``[n, P, 2]``, score S ``[n, P]`` and raw soft score ``[n, P]``."""
        n, p, grid, _ = self.g.shape
        s = self.s.reshape(n, p, grid * grid)
        score, arg = s.max(dim=2)
        return grid_position(self.centre, self.offsets, arg), score, s.sum(dim=2)


def grid_position(centre: torch.Tensor, offsets: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """``[n, P, 2]`` the candidate ``arg`` (row-major in the ``G×G`` grid) of every pattern."""
    n, p = arg.shape
    grid = offsets.shape[1]
    # offsets[p, j] for the arg-max column j and row i: two small gathers on [n, P]
    shift_x = offsets.expand(n, p, grid).gather(2, (arg % grid)[..., None])
    shift_y = offsets.expand(n, p, grid).gather(2, (arg // grid)[..., None])
    return centre + torch.cat([shift_x, shift_y], dim=-1)


def node_prior(
    params: LayerParams, upper_positions: torch.Tensor | None, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expected position, spread s̃ and log lambda of every pattern (docs/method.md §4 steps 1-2).

    Parent deviations and spreads are rescaled to this layer's units by stride_{L+1}/stride_L
    (the FIX of docs/method.md; the spread is rescaled with the deviation so both are in one unit).
    Patterns with no parents get shift 0, s̃ = 0.15·H and lambda = 1.

    Returns:
        ``centre [n, P, 2]``, ``s_tilde [n, P]``, ``log_lambda [n, P]``.
    """
    mu, dtype, device = params.mu, params.mu.dtype, params.mu.device
    p = mu.shape[0]
    none_tilde = torch.full((n, p), params.half_window, dtype=dtype, device=device)
    if (
        upper_positions is None
        or params.upper_sigma is None
        or not bool((params.parent_index >= 0).any())
    ):
        return (
            mu[None].expand(n, p, 2).clone(),
            none_tilde,
            torch.zeros((n, p), dtype=dtype, device=device),
        )
    valid = params.parent_index >= 0  # [P, M]
    idx = params.parent_index.clamp(min=0)
    count = valid.sum(dim=1).clamp(min=1).to(dtype)  # M_V, parents actually held
    sig = params.upper_sigma[idx] * params.ratio  # [P, M]
    var = count[:, None] * sig**2  # M·sigma'²
    w = torch.where(valid, 1.0 / var, torch.zeros_like(var))
    sw = w.sum(dim=1)  # [P]
    has = sw > 0
    # Images last ([P, M, 2, n]): the parent rows are copied whole, and every pass below runs
    # over contiguous memory instead of over trailing axes of size 2.
    upper = upper_positions.permute(1, 2, 0).contiguous()  # [Q, 2, n]
    shift = torch.empty((p, 2, n), dtype=dtype, device=device)
    wd2 = torch.empty((p, n), dtype=dtype, device=device)
    # Blocks of patterns small enough that the [block, M, 2, n] temporaries stay in cache across
    # the passes below (same arithmetic per pattern as one whole pass, so the same numbers).
    block = max(1, _PRIOR_BLOCK // max(idx.shape[1] * 2 * n, 1)) if device.type == "cpu" else p
    for b0 in range(0, p, block):
        b1 = min(b0 + block, p)
        delta = upper[idx[b0:b1]].sub_(params.parent_mean[b0:b1, :, :, None]).mul_(params.ratio)
        weighted = delta * w[b0:b1, :, None, None]
        torch.sum(weighted, dim=1, out=shift[b0:b1])
        # Σ_m |shift - delta_m|²/(2M·sigma_m²) = ½(Σ w|delta|² - |shift|²·Σw), Σ w·delta = shift·Σw
        torch.sum(weighted.mul_(delta), dim=(1, 2), out=wd2[b0:b1])
    shift /= sw.clamp(min=1e-30)[:, None, None]  # [P, 2, n]
    s_tilde = sw.clamp(min=1e-30).rsqrt()
    spread = 0.5 * (wd2 - shift.square().sum(dim=1) * sw[:, None])
    log_sig = torch.where(valid, torch.log(sig), torch.zeros_like(sig)).sum(dim=1)
    log_lambda = (torch.log(s_tilde) - log_sig)[:, None] - spread.clamp(min=0.0)  # [P, n]
    shift = torch.where(has[:, None, None], shift, torch.zeros_like(shift))
    centre = mu[None] + shift.permute(2, 0, 1)
    s_tilde = torch.where(has[None], s_tilde[None].expand(n, p), none_tilde)
    log_lambda = torch.where(has[None], log_lambda.T, torch.zeros((), dtype=dtype, device=device))
    return centre, s_tilde, log_lambda


@dataclass
class CandidateGrids:
    """Each pattern's candidate grid and the factors of its prior there (``[n, P, G]`` each)."""

    centre: torch.Tensor  # [n, P, 2]
    s_tilde: torch.Tensor  # [n, P]
    offsets: torch.Tensor  # [P, G]
    xs: torch.Tensor  # columns, map units
    ys: torch.Tensor  # rows
    axis: torch.Tensor  # g = axis[y] · scaled[x]
    scaled: torch.Tensor


def candidate_grids(
    params: LayerParams, n: int, upper_positions: torch.Tensor | None
) -> CandidateGrids:
    """Every pattern's expected position, candidate grid and prior factors on ``n`` images."""
    centre, s_tilde, log_lambda = node_prior(params, upper_positions, n)
    unit = unit_offsets(params.settings.grid, dtype=params.mu.dtype, device=params.mu.device)
    offsets = params.h[:, None] * unit[None]  # [P, G]
    xs = centre[..., 0:1] + offsets[None]
    ys = centre[..., 1:2] + offsets[None]
    # the Gaussian factorises over x and y: two [n, P, G] exponentials and one outer product
    var = s_tilde**2
    axis = torch.exp(-(offsets[None] ** 2) / (2.0 * var[..., None]))  # [n, P, G]
    scale = torch.exp(log_lambda - torch.log(2.0 * math.pi * var))  # [n, P]
    return CandidateGrids(centre, s_tilde, offsets, xs, ys, axis, axis * scale[..., None])


def evaluate(
    params: LayerParams, smoothed: torch.Tensor, upper_positions: torch.Tensor | None
) -> Evaluation:
    """Prior ``g``, evidence ``A`` on each pattern's candidate grid (docs/method.md §4 step 3)."""
    n, c, _height, _width = smoothed.shape
    grid = params.settings.grid
    p, npf = params.mu.shape[0], params.per_filter
    cand = candidate_grids(params, n, upper_positions)
    evidence = sample_grids(
        smoothed, cand.xs.reshape(n, c, npf, grid), cand.ys.reshape(n, c, npf, grid)
    ).reshape(n, p, grid, grid)
    g = cand.axis[..., :, None] * cand.scaled[..., None, :]
    return Evaluation(cand.centre, cand.s_tilde, cand.offsets, g, evidence, cand.axis, cand.scaled)


def locate(
    params: LayerParams, smoothed: torch.Tensor, upper_positions: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``evaluate(...)`` then :meth:`Evaluation.best`: expected position, position, score, soft.

    Inference needs only these; on the CPU the compiled kernel computes them in one pass,
    without the ``[n, P, G, G]`` prior, evidence and product.
    """
    if not compiled_kernels_enabled(smoothed.device):
        ev = evaluate(params, smoothed, upper_positions)
        return (ev.centre, *ev.best())
    cand = candidate_grids(params, smoothed.shape[0], upper_positions)
    arg, score, soft = best_candidates_cpu(
        smoothed, cand.xs, cand.ys, cand.axis, cand.scaled, params.per_filter
    )
    return cand.centre, grid_position(cand.centre, cand.offsets, arg), score, soft


def windows(params: LayerParams, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pattern's window: top-left corner ``[n, C, N, 2]`` and cell width ``[C, N]``."""
    c, npf = params.geometry.channels, params.per_filter
    h = params.h.reshape(c, npf)
    lo = centre.reshape(centre.shape[0], c, npf, 2) - h[None, :, :, None]
    return lo, 2.0 * h / params.settings.grid


def competition(
    params: LayerParams, ev: Evaluation, qx: torch.Tensor, qy: torch.Tensor
) -> torch.Tensor:
    """Σ over the filter's patterns of their g at separable query grids (see :func:`box_sum`).

    ``qx [n, C, A, X]``, ``qy [n, C, A, Y]`` → ``[n, C, A, Y, X]``; sliced over images so that the
    pairwise index tensor stays within ``settings.work_elements``.
    """
    n, _p, grid, _ = ev.g.shape
    c, npf = params.geometry.channels, params.per_filter
    lo, cell = windows(params, ev.centre)
    rows = ev.row_factor.reshape(n, c, npf, grid)
    cols = ev.col_factor.reshape(n, c, npf, grid)
    per_image = c * qx.shape[2] * qx.shape[3] * qy.shape[3] * npf

    def run(sl: slice) -> torch.Tensor:
        return separable_box_sum(qx[sl], qy[sl], lo[sl], cell, rows[sl], cols[sl])

    return in_slices(n, per_image, params.settings.work_elements, run)


def background(params: LayerParams, ev: Evaluation) -> torch.Tensor:
    """``[n]`` background term tau = tau·(mean over the layer's patterns of Σ_c g), per image."""
    return params.settings.tau * ev.g.sum(dim=(2, 3)).mean(dim=1)


def candidate_competition(params: LayerParams, ev: Evaluation) -> torch.Tensor:
    """``[n, P, G, G]`` Σ_V'' g_V''(q) at every candidate q of every pattern."""
    n, p, grid, _ = ev.g.shape
    c, npf = params.geometry.channels, params.per_filter
    qx = (ev.centre[..., 0:1] + ev.offsets[None]).reshape(n, c, npf, grid)
    qy = (ev.centre[..., 1:2] + ev.offsets[None]).reshape(n, c, npf, grid)
    return competition(params, ev, qx, qy).reshape(n, p, grid, grid)


def explained_mass(
    params: LayerParams, ev: Evaluation, mass: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mass the patterns take over every unit of the map, and the total mass (both ``[n]``).

    At unit u the patterns' responsibility is Σ g(u) / max(Σ g(u) + tau, 1e-7), with each pattern's
    g piecewise constant on its window as in the E-step; mass outside every window is background.
    """
    n, c, height, width = mass.shape
    qx = torch.arange(width, dtype=mass.dtype, device=mass.device).expand(n, c, 1, width)
    qy = torch.arange(height, dtype=mass.dtype, device=mass.device).expand(n, c, 1, height)
    comp = competition(params, ev, qx, qy).reshape(n, c, height, width)
    tau = background(params, ev)[:, None, None, None]
    resp = comp / (comp + tau).clamp(min=1e-7)
    return (resp * mass).sum(dim=(1, 2, 3)), mass.sum(dim=(1, 2, 3))


def flip_criterion(soft_a: torch.Tensor, soft_b: torch.Tensor) -> torch.Tensor:
    """``[n]`` True where orientation b explains the image better: larger Σ_V log Σ_c g·A.

    A small floor (1e-6 of the image's mean soft score) keeps patterns with no evidence from
    turning the sum into -inf.
    """
    floor = 1e-6 * torch.cat([soft_a, soft_b], dim=1).mean(dim=1, keepdim=True) + 1e-30
    return torch.log(soft_b + floor).sum(dim=1) > torch.log(soft_a + floor).sum(dim=1)


def params_for(
    patterns: LayerPatterns,
    settings: GraphSettings,
    upper: LayerPatterns | None,
    device: torch.device,
) -> LayerParams:
    """:class:`LayerParams` of a learned layer, parents indexing the whole layer above."""
    dtype = settings.torch_dtype
    p = patterns.to(device)
    return LayerParams(
        geometry=patterns.geometry,
        per_filter=patterns.per_filter,
        mu=p.mu.to(dtype),
        sigma=p.sigma.to(dtype),
        parent_index=p.parents,
        parent_mean=p.parent_mean.to(dtype),
        upper_sigma=None if upper is None else upper.sigma.to(device, dtype),
        ratio=1.0 if upper is None else upper.geometry.stride / patterns.geometry.stride,
        settings=settings,
    )


def mixed_chunk(
    features: FeatureSource,
    layer: int,
    start: int,
    stop: int,
    flipped: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """Mass of images ``start:stop``, each read from the orientation ``flipped`` names.

    Each run of images with the same orientation is read from that orientation only, so no
    image is read twice.
    """
    flags = flipped.reshape(-1).cpu()
    if not bool(flags.any()) or bool(flags.all()):
        return features.chunk(layer, start, stop, flipped=bool(flags.any()), device=device)
    change = (flags[1:] != flags[:-1]).nonzero().reshape(-1) + 1
    edges = [0, *change.tolist(), int(flags.numel())]
    parts = [
        features.chunk(layer, start + a, start + b, flipped=bool(flags[a]), device=device)
        for a, b in itertools.pairwise(edges)
    ]
    return torch.cat(parts, dim=0)


def _as_flags(flipped: bool | torch.Tensor | None, n: int) -> torch.Tensor | None:
    if flipped is None:
        return None
    if isinstance(flipped, bool):
        return torch.full((n,), flipped, dtype=torch.bool)
    flags = torch.as_tensor(flipped, dtype=torch.bool).reshape(-1)
    if flags.numel() != n:
        raise InputError(
            f"flipped names {flags.numel()} images for a chunk of {n}; give one per image"
        )
    return flags


def _check_inference(
    graph: ExplanatoryGraph,
    features: FeatureSource,
    start: int,
    stop: int,
    flipped: bool | torch.Tensor | None,
) -> torch.Tensor | None:
    """Refuse a bad image range, features of other layers, or mirrors the features lack; the
    forced orientation per image (None: chosen per image)."""
    if not 0 <= start <= stop <= features.num_images:
        raise InputError(f"image range {start}:{stop} is outside 0:{features.num_images}")
    if [(g.channels, g.height, g.width) for g in features.layers] != [
        (lp.geometry.channels, lp.geometry.height, lp.geometry.width) for lp in graph.layers
    ]:
        raise MiningError(
            "the features' layers do not match the graph's layers; extract features of the same "
            "model and layers the graph was learned on"
        )
    flags = _as_flags(flipped, stop - start)
    if flags is not None and bool(flags.any()) and not features.mirrored:
        raise InputError("flipped images were asked for but the features hold no mirrored maps")
    return flags


def _infer_chunk(
    graph: ExplanatoryGraph,
    params: list[LayerParams],
    features: FeatureSource,
    span: tuple[int, int],
    flags: torch.Tensor,
    choose: bool,
    dev: torch.device,
) -> tuple[list[tuple[torch.Tensor, ...]], torch.Tensor]:
    """One top-down pass over images ``span``: per layer (bottom→top) positions, expected
    positions, scores and normalised soft scores on the CPU, and the orientation used (chosen
    at the top layer when ``choose``, else ``flags``)."""
    s, e = span
    settings, top = graph.settings, len(graph.layers) - 1
    out: list[tuple[torch.Tensor, ...]] = [() for _ in graph.layers]
    upper: torch.Tensor | None = None
    for i in range(top, -1, -1):
        par = params[i]
        sig, trunc = settings.sigma_map * par.geometry.height, settings.truncate
        mass = mixed_chunk(features, i, s, e, flags, dev).to(par.mu.dtype)
        centre, pos, score, soft = locate(par, smooth(mass, sig, trunc), upper)
        if i == top and choose:
            mirror = features.chunk(i, s, e, flipped=True, device=dev).to(par.mu.dtype)
            centre_m, pos_m, score_m, soft_m = locate(par, smooth(mirror, sig, trunc), None)
            flags = flip_criterion(soft, soft_m).cpu()
            pick = flags.to(dev)
            centre = torch.where(pick[:, None, None], centre_m, centre)
            pos = torch.where(pick[:, None, None], pos_m, pos)
            score = torch.where(pick[:, None], score_m, score)
            soft = torch.where(pick[:, None], soft_m, soft)
        norm = graph.layers[i].soft_norm
        out[i] = (pos.cpu(), centre.cpu(), score.cpu(), (soft / max(norm, 1e-30)).cpu())
        upper = pos
    return out, flags


def infer_graph(
    graph: ExplanatoryGraph,
    features: FeatureSource,
    start: int,
    stop: int,
    *,
    device: str | torch.device = "cpu",
    flipped: bool | torch.Tensor | None = None,
) -> GraphInference:
    """One top-down pass of the whole graph over images ``start:stop`` (docs/method.md §4).

    Images are processed ``graph.settings.chunk_size`` at a time. Results are on the CPU.

    Args:
        graph: a learned graph whose layers match ``features.layers``.
        features: the images' feature source.
        start, stop: the image range.
        device: where to compute.
        flipped: ``None`` chooses the orientation per image as the module docstring says;
            a bool or ``[stop - start]`` bool tensor forces it.

    Returns:
        Per layer positions, expected positions, scores and soft scores, and the orientation used.
    """
    dev = torch.device(device)
    settings = graph.settings
    flags = _check_inference(graph, features, start, stop, flipped)
    choose = flags is None and settings.use_flip and features.mirrored
    top = len(graph.layers) - 1
    params = [
        params_for(lp, settings, graph.layers[i + 1] if i < top else None, dev)
        for i, lp in enumerate(graph.layers)
    ]
    out: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in graph.layers]
    used: list[torch.Tensor] = []
    for s in range(start, stop, settings.chunk_size):
        e = min(s + settings.chunk_size, stop)
        if flags is None:
            chunk_flags = torch.zeros(e - s, dtype=torch.bool)
        else:
            chunk_flags = flags[s - start : e - start]
        per_layer, chunk_flags = _infer_chunk(
            graph, params, features, (s, e), chunk_flags, choose, dev
        )
        for parts, part in zip(out, per_layer, strict=True):
            parts.append(part)
        used.append(chunk_flags)
    layers = [
        LayerInference(*(torch.cat([part[k] for part in parts], dim=0) for k in range(4)))
        if parts
        else _empty(lp.num_patterns)
        for parts, lp in zip(out, graph.layers, strict=True)
    ]
    flags_out = torch.cat(used) if used else torch.zeros(0, dtype=torch.bool)
    return GraphInference(layers, [lp.geometry for lp in graph.layers], flags_out)


def _empty(p: int) -> LayerInference:
    return LayerInference(
        torch.zeros(0, p, 2), torch.zeros(0, p, 2), torch.zeros(0, p), torch.zeros(0, p)
    )


__all__ = [
    "CandidateGrids",
    "Evaluation",
    "LayerParams",
    "background",
    "candidate_competition",
    "candidate_grids",
    "evaluate",
    "explained_mass",
    "flip_criterion",
    "grid_position",
    "infer_graph",
    "locate",
    "mixed_chunk",
    "node_prior",
    "params_for",
    "windows",
]
