"""Learning an explanatory graph top-down, layer by layer (docs/method.md §5).

For each layer, from the top: seeded initialisation, then ``iterations`` rounds of E-step (all
images, chunked), M-step and — from the second round on, below the top, with ``use_parents`` —
parent selection from the candidate pool of the finished layer above. A final pass with the
learned parameters gives the layer's mean positions, scores, soft-score scale and explained
share, and the positions its children use. At the top layer each image is read both as given and
mirrored (when the features have mirrored maps and ``use_flip``), and the orientation the
patterns explain better is kept; the final choice is reused by every layer below.

Memory: besides one chunk of features, a layer keeps ``[n, P, 3]`` floats of positions and scores
of this rank's images (for parent selection), and the layer above's candidates ``[n, K, 2]``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from explgraph.core.errors import InputError, MiningError
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.graph import distributed
from miner.graph.checkpoint import LayerCheckpoints, run_digest
from miner.graph.estep import estep_chunk, m_step
from miner.graph.evidence import smooth
from miner.graph.inference import (
    LayerParams,
    evaluate,
    explained_mass,
    flip_criterion,
    infer_graph,
    locate,
    mixed_chunk,
)
from miner.graph.parents import ParentContext, candidate_pool, select_parents
from miner.graph.settings import GraphSettings
from miner.graph.types import ExplanatoryGraph, FeatureSource, LayerPatterns, LayerSlice
from miner.models.spec import LayerGeometry

log = logging.getLogger(__name__)


@dataclass
class _Shard:
    features: FeatureSource
    start: int
    stop: int
    total: int
    device: torch.device
    settings: GraphSettings

    def chunks(self) -> list[tuple[int, int]]:
        step = self.settings.chunk_size
        return [(s, min(s + step, self.stop)) for s in range(self.start, self.stop, step)]

    def rows(self, span: tuple[int, int]) -> slice:
        """The rows of this rank's per-image arrays that hold images ``span``."""
        return slice(span[0] - self.start, span[1] - self.start)

    @property
    def size(self) -> int:
        """How many images this rank learns on."""
        return self.stop - self.start


def initial_patterns(
    geometry: LayerGeometry, per_filter: int, settings: GraphSettings, layer: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``mu [P, 2]`` at distinct grid units of each filter's map and ``sigma = 0.15·H``."""
    gen = torch.Generator().manual_seed(settings.seed * 1_000_003 + layer)
    h, w, c = geometry.height, geometry.width, geometry.channels
    units = torch.rand(c, h * w, generator=gen).argsort(dim=1)[:, :per_filter].reshape(-1)
    mu = torch.stack([units % w, units // w], dim=1).to(settings.torch_dtype)
    sigma = torch.full((c * per_filter,), settings.window * h, dtype=settings.torch_dtype)
    return mu, sigma


def _read_chunk(
    params: LayerParams,
    shard: _Shard,
    layer: int,
    span: tuple[int, int],
    flips: torch.Tensor | None,
    upper: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smoothed mass, mass and orientation (``[n]`` bool) of images ``span``; with
    ``flips=None`` each image's orientation is chosen here (docs/method.md §5.5)."""
    s, e = span
    settings, dev = shard.settings, shard.device
    sig = settings.sigma_map * params.geometry.height
    dtype = params.mu.dtype
    if flips is not None:
        mass = mixed_chunk(shard.features, layer, s, e, flips, dev).to(dtype)
        return smooth(mass, sig, settings.truncate), mass, flips
    mass = shard.features.chunk(layer, s, e, device=dev).to(dtype)
    smoothed = smooth(mass, sig, settings.truncate)
    if not (settings.use_flip and shard.features.mirrored):
        return smoothed, mass, torch.zeros(e - s, dtype=torch.bool, device=dev)
    mirror = shard.features.chunk(layer, s, e, flipped=True, device=dev).to(dtype)
    smoothed_m = smooth(mirror, sig, settings.truncate)
    *_, soft = locate(params, smoothed, upper)
    *_, soft_m = locate(params, smoothed_m, upper)
    choice = flip_criterion(soft, soft_m)
    pick = choice[:, None, None, None]
    return torch.where(pick, smoothed_m, smoothed), torch.where(pick, mirror, mass), choice


@dataclass
class _Layer:
    """One layer being learned on this rank's images: its parameters and what it reads."""

    index: int
    params: LayerParams
    shard: _Shard
    context: ParentContext | None  # the finished layer above (None at the top)
    flips: torch.Tensor | None  # this rank's orientations (None: chosen at the top layer)

    def read(self, span: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Smoothed mass, mass and orientation of images ``span`` (see :func:`_read_chunk`)."""
        rows = self.shard.rows(span)
        flips = None if self.flips is None else self.flips[rows]
        return _read_chunk(self.params, self.shard, self.index, span, flips, self.upper(span))

    def upper(self, span: tuple[int, int]) -> torch.Tensor | None:
        """The candidate parents' positions on images ``span`` (None at the top)."""
        if self.context is None:
            return None
        return self.context.positions[self.shard.rows(span)]


def _initial_params(index: int, shard: _Shard, context: ParentContext | None) -> LayerParams:
    """Layer ``index``'s seeded patterns, without parents yet."""
    settings, dev = shard.settings, shard.device
    layers = shard.features.layers
    geometry = layers[index]
    per_filter = settings.patterns_per_filter(layers)[index]
    mu, sigma = initial_patterns(geometry, per_filter, settings, index)
    p, m = mu.shape[0], settings.parents
    return LayerParams(
        geometry=geometry,
        per_filter=per_filter,
        mu=mu.to(dev),
        sigma=sigma.to(dev),
        parent_index=torch.full((p, m), -1, dtype=torch.long, device=dev),
        parent_mean=torch.zeros((p, m, 2), dtype=mu.dtype, device=dev),
        upper_sigma=None if context is None else context.sigma,
        ratio=1.0 if context is None else context.geometry.stride / geometry.stride,
        settings=settings,
    )


def _e_step(
    run: _Layer,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One E-step over this rank's images, summed over every rank: the terms ``[P, 7]``, the
    smallest s̃ ``[1]``, and this rank's positions ``[n, P, 2]`` and scores ``[n, P]``."""
    dev, dtype = run.shard.device, run.shard.settings.torch_dtype
    p = run.params.mu.shape[0]
    sums = torch.zeros((p, 7), dtype=torch.float64, device=dev)
    s_min = torch.full((1,), math.inf, dtype=torch.float64, device=dev)
    positions = torch.zeros((run.shard.size, p, 2), dtype=dtype, device=dev)
    scores = torch.zeros((run.shard.size, p), dtype=dtype, device=dev)
    for span in run.shard.chunks():
        smoothed, _, _ = run.read(span)
        terms, s_tilde, pos, score = estep_chunk(run.params, smoothed, run.upper(span))
        sums += terms.sum(dim=0).to(torch.float64)
        s_min = torch.minimum(s_min, s_tilde.min().to(torch.float64).reshape(1))
        positions[run.shard.rows(span)] = pos
        scores[run.shard.rows(span)] = score
    distributed.all_sum(sums)
    distributed.all_min(s_min)
    return sums, s_min, positions, scores


def _iterate(run: _Layer, progress: Progress) -> torch.Tensor:
    """``settings.iterations`` rounds of E-step, M-step and (below the top, from the second
    round on) parent selection; updates ``run.params``, returns the parent weights ``[P, M]``."""
    params, shard, context = run.params, run.shard, run.context
    settings = shard.settings
    density = settings.densities(shard.features.layers)[run.index]
    weight = torch.zeros(params.parent_index.shape, dtype=params.mu.dtype, device=shard.device)
    learn_parents = context is not None and settings.use_parents and context.size > 0
    with progress.task(f"learn {params.geometry.name}", settings.iterations) as bar:
        for t in range(1, settings.iterations + 1):
            sums, s_min, positions, scores = _e_step(run)
            new_mu, new_sigma = m_step(params, sums.to(params.mu.dtype), float(s_min), t, density)
            if learn_parents and t < settings.iterations:
                assert context is not None
                index, weight = select_parents(
                    positions, scores, params.geometry, context, shard.total, settings
                )
                params.parent_index = index
                params.parent_mean = context.mean[index.clamp(min=0)]
            params.mu, params.sigma = new_mu, new_sigma
            bar.advance()
            fault_point("learn.iteration")
    return weight


@dataclass
class _FinalPass:
    """The learned layer read once more on this rank's images."""

    positions: torch.Tensor  # [n, P, 2] best positions
    scores: torch.Tensor  # [n, P]
    softs: torch.Tensor  # [n, P] raw soft scores
    used: torch.Tensor  # [n] bool, the orientation read
    mass: torch.Tensor  # [2] float64: explained mass, total mass (this rank)


def _final_pass(run: _Layer) -> _FinalPass:
    """Positions, scores, orientation and explained mass with the learned parameters."""
    dev, dtype = run.shard.device, run.params.mu.dtype
    n, p = run.shard.size, run.params.mu.shape[0]
    final = _FinalPass(
        positions=torch.zeros((n, p, 2), dtype=dtype, device=dev),
        scores=torch.zeros((n, p), dtype=dtype, device=dev),
        softs=torch.zeros((n, p), dtype=dtype, device=dev),
        used=torch.zeros(n, dtype=torch.bool, device=dev),
        mass=torch.zeros(2, dtype=torch.float64, device=dev),
    )
    for span in run.shard.chunks():
        smoothed, mass, chosen = run.read(span)
        ev = evaluate(run.params, smoothed, run.upper(span))
        pos, score, soft = ev.best()
        rows = run.shard.rows(span)
        final.positions[rows], final.scores[rows], final.softs[rows] = pos, score, soft
        final.used[rows] = chosen
        taken, total = explained_mass(run.params, ev, mass)
        final.mass += torch.stack([taken.sum(), total.sum()]).to(torch.float64)
    return final


def _finished_patterns(run: _Layer, weight: torch.Tensor, final: _FinalPass) -> LayerPatterns:
    """The learned layer with its statistics over every rank's images (on the compute device)."""
    params, context = run.params, run.context
    stats = torch.cat(
        [
            final.positions.sum(dim=0),
            final.scores.sum(dim=0)[:, None],
            final.softs.sum(dim=0)[:, None],
        ],
        dim=1,
    ).to(torch.float64)
    distributed.all_sum(stats)
    distributed.all_sum(final.mass)
    stats = (stats / run.shard.total).to(params.mu.dtype)
    parent_ids = params.parent_index
    if context is not None:
        parent_ids = torch.where(parent_ids >= 0, context.ids[parent_ids.clamp(min=0)], parent_ids)
    has_parent = params.parent_index >= 0
    return LayerPatterns(
        geometry=params.geometry,
        filter=torch.arange(params.geometry.channels, device=run.shard.device).repeat_interleave(
            params.per_filter
        ),
        mu=params.mu,
        sigma=params.sigma,
        parents=parent_ids,
        parent_weight=torch.where(has_parent, weight, torch.zeros_like(weight)),
        parent_mean=torch.where(
            has_parent[..., None], params.parent_mean, torch.zeros_like(params.parent_mean)
        ),
        mean_position=stats[:, 0:2],
        mean_score=stats[:, 2],
        soft_norm=float(stats[:, 3].mean()),
        explained_share=float(final.mass[0] / final.mass[1]) if float(final.mass[1]) > 0 else 0.0,
    )


def _learn_layer(
    layer: int,
    shard: _Shard,
    context: ParentContext | None,
    flips: torch.Tensor | None,
    progress: Progress,
) -> tuple[LayerPatterns, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Learn one layer. Returns its patterns and, for this rank's images, the orientation used,
    final positions ``[n, P, 2]`` and raw soft scores ``[n, P]`` and scores ``[n, P]``."""
    run = _Layer(layer, _initial_params(layer, shard, context), shard, context, flips)
    weight = _iterate(run, progress)
    final = _final_pass(run)
    patterns = _finished_patterns(run, weight, final)
    return patterns.to("cpu"), final.used, final.positions, final.softs, final.scores


def _context(
    patterns: LayerPatterns,
    positions: torch.Tensor,
    softs: torch.Tensor,
    shard: _Shard,
) -> ParentContext:
    """Candidate parents of the layer below from a finished layer's final pass."""
    dev = shard.device
    mean = patterns.mean_position.to(dev)
    ids = candidate_pool(patterns.geometry, positions, softs, mean, shard.total, shard.settings)
    return ParentContext(
        geometry=patterns.geometry,
        ids=ids,
        positions=positions[:, ids].contiguous(),
        sigma=patterns.sigma.to(dev)[ids],
        mean=mean[ids],
    )


def _validate(features: FeatureSource, settings: GraphSettings) -> None:
    if features.num_images < 1:
        raise InputError("no images to learn from; give at least one training image")
    if not features.layers:
        raise InputError("no layers selected; select at least one conv layer")
    settings.patterns_per_filter(features.layers)
    for a, b in zip(features.layers, features.layers[1:], strict=False):
        if b.stride < a.stride:
            raise InputError(
                f"layers must go bottom→top, but {b.name} (stride {b.stride}) comes after "
                f"{a.name} (stride {a.stride}); order them from the input side"
            )


def _checkpoints(
    checkpoint_dir: str | None, key: str | None, features: FeatureSource, settings: GraphSettings
) -> LayerCheckpoints | None:
    """The per-layer checkpoints of this run (None: no folder given)."""
    if checkpoint_dir is None:
        return None
    run_key = key if key is not None else getattr(features, "key", None)
    if not run_key:
        raise MiningError(
            "checkpoints need a key for the features: pass key= or give the source a .key"
        )
    digest = run_digest(str(run_key), settings, features.layers, features.num_images)
    return LayerCheckpoints(checkpoint_dir, digest)


def _finished_layers(
    checkpoints: LayerCheckpoints | None, top: int
) -> tuple[dict[int, LayerPatterns], torch.Tensor | None]:
    """The layers an earlier run finished, from the top down, and the orientations it chose."""
    learned: dict[int, LayerPatterns] = {}
    all_flips: torch.Tensor | None = None
    if checkpoints is None:
        return learned, all_flips
    for layer in range(top, -1, -1):
        got = checkpoints.load(layer)
        if got is None:
            break
        learned[layer], all_flips = got
    if learned:
        log.info("resuming: layers %s restored from %s", sorted(learned), checkpoints.folder)
    return learned, all_flips


def _resumed_context(
    learned: dict[int, LayerPatterns], all_flips: torch.Tensor, shard: _Shard
) -> ParentContext | None:
    """The parent candidates for the layer below the lowest finished one (inferred again)."""
    lowest, top = min(learned), len(shard.features.layers) - 1
    if lowest == 0:
        return None
    features, settings = shard.features, shard.settings
    partial = ExplanatoryGraph([learned[i] for i in range(lowest, top + 1)], settings, all_flips)
    local_flips = all_flips[shard.start : shard.stop].to(shard.device)
    inf = infer_graph(
        partial,
        LayerSlice(features, lowest),
        shard.start,
        shard.stop,
        device=shard.device,
        flipped=local_flips.cpu(),
    )
    positions, softs = inf.layers[0].positions.to(shard.device), inf.layers[0].soft.to(shard.device)
    return _context(learned[lowest], positions, softs, shard)


def learn_graph(
    features: FeatureSource,
    settings: GraphSettings | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    checkpoint_dir: str | None = None,
    key: str | None = None,
) -> ExplanatoryGraph:
    """Learn the explanatory graph of the features' layers (docs/method.md §5).

    Args:
        features: normalised mass of the training images (see :class:`FeatureSource`).
        settings: parameters; defaults are the paper's.
        device: where to compute; under ``torch.distributed`` each rank passes its own.
        progress: shows one bar per layer.
        checkpoint_dir: folder for per-layer checkpoints; a re-run with the same features key and
            settings skips the layers already finished.
        key: identity of the features for the checkpoints; defaults to ``features.key``.

    Returns:
        The graph (tensors on the CPU); every rank returns the same graph.

    Raises:
        InputError: bad settings or features; MiningError: no key for the checkpoints.
    """
    settings = settings or GraphSettings()
    _validate(features, settings)
    start, stop = distributed.shard(features.num_images)
    shard = _Shard(features, start, stop, features.num_images, torch.device(device), settings)
    top = len(features.layers) - 1
    checkpoints = _checkpoints(checkpoint_dir, key, features, settings)
    learned, all_flips = _finished_layers(checkpoints, top)
    context: ParentContext | None = None
    local_flips: torch.Tensor | None = None
    if learned:
        assert all_flips is not None
        local_flips = all_flips[start:stop].to(shard.device)
        context = _resumed_context(learned, all_flips, shard)
    for layer in range(top, -1, -1):
        if layer in learned:
            continue
        patterns, used, positions, softs, _ = _learn_layer(
            layer, shard, context, local_flips, progress
        )
        if local_flips is None:
            local_flips = used
            all_flips = distributed.gather_rows(used, features.num_images, start).cpu()
        assert all_flips is not None
        learned[layer] = patterns
        if checkpoints is not None:
            checkpoints.save(layer, patterns, all_flips)
        context = _context(patterns, positions, softs, shard) if layer > 0 else None
    assert all_flips is not None
    return ExplanatoryGraph([learned[i] for i in range(top + 1)], settings, all_flips.cpu())


__all__ = ["initial_patterns", "learn_graph"]
