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


def _learn_layer(
    layer: int,
    shard: _Shard,
    context: ParentContext | None,
    flips: torch.Tensor | None,
    progress: Progress,
) -> tuple[LayerPatterns, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Learn one layer. Returns its patterns and, for this rank's images, the orientation used,
    final positions ``[n, P, 2]`` and raw soft scores ``[n, P]`` and scores ``[n, P]``."""
    settings, dev = shard.settings, shard.device
    layers = shard.features.layers
    geometry = layers[layer]
    per_filter = settings.patterns_per_filter(layers)[layer]
    density = settings.densities(layers)[layer]
    mu, sigma = initial_patterns(geometry, per_filter, settings, layer)
    p, m = mu.shape[0], settings.parents
    params = LayerParams(
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
    weight = torch.zeros((p, m), dtype=mu.dtype, device=dev)
    n_local = shard.stop - shard.start
    learn_parents = context is not None and settings.use_parents and context.size > 0
    spans = shard.chunks()

    def upper_of(span: tuple[int, int]) -> torch.Tensor | None:
        if context is None:
            return None
        return context.positions[span[0] - shard.start : span[1] - shard.start]

    def flips_of(span: tuple[int, int]) -> torch.Tensor | None:
        return None if flips is None else flips[span[0] - shard.start : span[1] - shard.start]

    with progress.task(f"learn {geometry.name}", settings.iterations) as bar:
        for t in range(1, settings.iterations + 1):
            sums = torch.zeros((p, 7), dtype=torch.float64, device=dev)
            s_min = torch.full((1,), math.inf, dtype=torch.float64, device=dev)
            positions = torch.zeros((n_local, p, 2), dtype=mu.dtype, device=dev)
            scores = torch.zeros((n_local, p), dtype=mu.dtype, device=dev)
            for span in spans:
                smoothed, _, _ = _read_chunk(
                    params, shard, layer, span, flips_of(span), upper_of(span)
                )
                terms, s_tilde, pos, score = estep_chunk(params, smoothed, upper_of(span))
                sums += terms.sum(dim=0).to(torch.float64)
                s_min = torch.minimum(s_min, s_tilde.min().to(torch.float64).reshape(1))
                positions[span[0] - shard.start : span[1] - shard.start] = pos
                scores[span[0] - shard.start : span[1] - shard.start] = score
            distributed.all_sum(sums)
            distributed.all_min(s_min)
            new_mu, new_sigma = m_step(params, sums.to(mu.dtype), float(s_min), t, density)
            if learn_parents and t < settings.iterations:
                assert context is not None
                index, weight = select_parents(
                    positions, scores, geometry, context, shard.total, settings
                )
                params.parent_index = index
                params.parent_mean = context.mean[index.clamp(min=0)]
            params.mu, params.sigma = new_mu, new_sigma
            bar.advance()
            fault_point("learn.iteration")

    # Final pass with the learned parameters: statistics, orientation, positions for the children.
    positions = torch.zeros((n_local, p, 2), dtype=mu.dtype, device=dev)
    scores = torch.zeros((n_local, p), dtype=mu.dtype, device=dev)
    softs = torch.zeros((n_local, p), dtype=mu.dtype, device=dev)
    used = torch.zeros(n_local, dtype=torch.bool, device=dev)
    mass_sums = torch.zeros(2, dtype=torch.float64, device=dev)
    for span in spans:
        smoothed, mass, chosen = _read_chunk(
            params, shard, layer, span, flips_of(span), upper_of(span)
        )
        ev = evaluate(params, smoothed, upper_of(span))
        pos, score, soft = ev.best()
        rows = slice(span[0] - shard.start, span[1] - shard.start)
        positions[rows], scores[rows], softs[rows], used[rows] = pos, score, soft, chosen
        taken, total = explained_mass(params, ev, mass)
        mass_sums += torch.stack([taken.sum(), total.sum()]).to(torch.float64)
    stats = torch.cat(
        [positions.sum(dim=0), scores.sum(dim=0)[:, None], softs.sum(dim=0)[:, None]], dim=1
    ).to(torch.float64)
    distributed.all_sum(stats)
    distributed.all_sum(mass_sums)
    stats = (stats / shard.total).to(mu.dtype)
    parent_ids = params.parent_index
    if context is not None:
        parent_ids = torch.where(parent_ids >= 0, context.ids[parent_ids.clamp(min=0)], parent_ids)
    patterns = LayerPatterns(
        geometry=geometry,
        filter=torch.arange(geometry.channels, device=dev).repeat_interleave(per_filter),
        mu=params.mu,
        sigma=params.sigma,
        parents=parent_ids,
        parent_weight=torch.where(params.parent_index >= 0, weight, torch.zeros_like(weight)),
        parent_mean=torch.where(
            params.parent_index[..., None] >= 0,
            params.parent_mean,
            torch.zeros_like(params.parent_mean),
        ),
        mean_position=stats[:, 0:2],
        mean_score=stats[:, 2],
        soft_norm=float(stats[:, 3].mean()),
        explained_share=float(mass_sums[0] / mass_sums[1]) if float(mass_sums[1]) > 0 else 0.0,
    )
    return patterns.to("cpu"), used, positions, softs, scores


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
    dev = torch.device(device)
    start, stop = distributed.shard(features.num_images)
    shard = _Shard(features, start, stop, features.num_images, dev, settings)
    top = len(features.layers) - 1
    checkpoints: LayerCheckpoints | None = None
    if checkpoint_dir is not None:
        run_key = key if key is not None else getattr(features, "key", None)
        if not run_key:
            raise MiningError(
                "checkpoints need a key for the features: pass key= or give the source a .key"
            )
        digest = run_digest(str(run_key), settings, features.layers, features.num_images)
        checkpoints = LayerCheckpoints(checkpoint_dir, digest)

    learned: dict[int, LayerPatterns] = {}
    all_flips: torch.Tensor | None = None
    if checkpoints is not None:
        for layer in range(top, -1, -1):
            got = checkpoints.load(layer)
            if got is None:
                break
            learned[layer], all_flips = got

    context: ParentContext | None = None
    local_flips: torch.Tensor | None = None
    if learned:
        assert all_flips is not None
        local_flips = all_flips[start:stop].to(dev)
        lowest = min(learned)
        if lowest > 0:
            partial = ExplanatoryGraph(
                [learned[i] for i in range(lowest, top + 1)], settings, all_flips
            )
            inf = infer_graph(
                partial,
                LayerSlice(features, lowest),
                start,
                stop,
                device=dev,
                flipped=local_flips.cpu(),
            )
            context = _context(
                learned[lowest], inf.layers[0].positions.to(dev), inf.layers[0].soft.to(dev), shard
            )
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
