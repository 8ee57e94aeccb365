"""Gaussian voting for a part centre (docs/method.md §8), batched over images, patterns, templates.

Every USES row of an AOG is a voter. In each reading of an image (as given and mirrored) a
voter whose pattern fires puts its vote at the pattern's position plus the row's offset; the
OR node keeps the better reading (or the one it is told) and the arg-max of the best template.

Each voter k puts a Gaussian of amplitude ``a_k`` at its predicted part position ``c_k`` on a
``size x size`` grid of crop pixels (pixel ``(x, y)`` at integer coordinates); a template's map
is the sum over its voters. The Gaussian is separable, so a whole chunk of maps is one einsum of
per-axis profiles: no loop over voters or pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from miner.graph.inference import flip_criterion
from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun


@dataclass(frozen=True)
class VoteResult:
    """The winning location per image, and which template and voters produced it."""

    xy: torch.Tensor  # [n, 2] crop pixels
    template: torch.Tensor  # [n] long, winning template
    value: torch.Tensor  # [n] vote at the winner
    per_template: torch.Tensor  # [n, T] best vote of each template


def vote_maps(
    centres: torch.Tensor,
    amplitude: torch.Tensor,
    template: torch.Tensor,
    n_templates: int,
    *,
    size: int,
    sigma: float,
) -> torch.Tensor:
    """Sum every template's votes into maps ``[n, T, size, size]`` (rows y, columns x).

    Args:
        centres: ``[n, K, 2]`` predicted part positions (crop pixels, x, y).
        amplitude: ``[n, K]`` vote strengths (0 = does not vote).
        template: ``[K]`` long, the template each voter belongs to.
        n_templates: number of templates T.
        size: side of the crop.
        sigma: kernel sigma in pixels.
    """
    # pixel i covers [i, i + 1): the map samples pixel centres
    grid = torch.arange(size, dtype=centres.dtype, device=centres.device) + 0.5
    gx = torch.exp(-((grid[None, None, :] - centres[..., 0:1]) ** 2) / (2.0 * sigma**2))
    gy = torch.exp(-((grid[None, None, :] - centres[..., 1:2]) ** 2) / (2.0 * sigma**2))
    onehot = torch.nn.functional.one_hot(template.to(centres.device), n_templates).to(
        centres.dtype
    )  # [K, T]
    weights = amplitude[:, :, None] * onehot[None]  # [n, K, T]
    return torch.einsum("nkt,nky,nkx->ntyx", weights, gy, gx)


def best_vote(maps: torch.Tensor) -> VoteResult:
    """Arg-max over each template's map, then over templates (the part's OR node)."""
    n, t, height, width = maps.shape
    flat = maps.reshape(n, t, height * width)
    value, arg = flat.max(dim=2)  # [n, T]
    best_value, best_t = value.max(dim=1)
    pick = arg.gather(1, best_t[:, None])[:, 0]
    xy = torch.stack([(pick % width).to(maps.dtype), (pick // width).to(maps.dtype)], dim=-1) + 0.5
    return VoteResult(xy=xy, template=best_t, value=best_value, per_template=value)


def voter_contributions(
    centres: torch.Tensor,
    amplitude: torch.Tensor,
    at: torch.Tensor,
    *,
    sigma: float,
) -> torch.Tensor:
    """``[n, K]`` how much each voter adds to the map at ``at`` ``[n, 2]``: the explanation."""
    d2 = ((centres - at[:, None, :]) ** 2).sum(dim=-1)
    return amplitude * torch.exp(-d2 / (2.0 * sigma**2))


@dataclass
class Votes:
    """The OR node's answer for a chunk of images, both orientations already compared."""

    xy: torch.Tensor  # [n, 2] crop px, original orientation
    template: torch.Tensor  # [n]
    value: torch.Tensor  # [n]
    flipped: torch.Tensor  # [n] the mirrored reading won
    centres: torch.Tensor  # [n, K, 2] winning orientation's vote centres (its own frame)
    amplitude: torch.Tensor  # [n, K]
    positions: torch.Tensor  # [n, K, 2] voters' positions, original orientation
    maps: torch.Tensor | None = None  # [n, size, size] winning template's map, original frame


@dataclass(frozen=True)
class _Reading:
    """The votes of one reading (plain or mirrored), in that reading's own frame."""

    best: VoteResult
    centres: torch.Tensor  # [n, K, 2]
    amplitude: torch.Tensor  # [n, K]
    maps: torch.Tensor  # [n, T, size, size]


def voter_inputs(
    aog: AndOrGraph, layer_names: Sequence[str], run: GraphRun
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``[n, K, 2]`` and confidences ``[n, K]`` of the AOG's USES rows, in row order.

    ``run`` holds, per layer of ``layer_names``, the positions and confidences of whatever the
    USES rows' ``idx`` count (graph patterns, or raw filters for the baseline).
    """
    names = list(layer_names)
    layer_of = aog.uses["layer"].map({name: i for i, name in enumerate(names)}).to_numpy()
    idx = aog.uses["idx"].to_numpy(np.int64)
    n = run.pixels[0].shape[0]
    pos = torch.zeros(n, len(idx), 2)
    conf = torch.zeros(n, len(idx))
    for layer in np.unique(layer_of):  # a handful of layers; every image and pattern at once
        rows = torch.from_numpy(np.flatnonzero(layer_of == layer))
        cols = torch.tensor(idx[layer_of == layer])
        pos[:, rows] = run.pixels[int(layer)][:, cols].float()
        conf[:, rows] = run.confidence[int(layer)][:, cols].float()
    return pos, conf


def _vote_reading(
    positions: torch.Tensor,
    confidence: torch.Tensor,
    offsets: torch.Tensor,
    weights: torch.Tensor,
    template: torch.Tensor,
    n_templates: int,
    *,
    size: int,
    sigma: float,
    min_confidence: float,
    confidence_cap: float,
) -> _Reading:
    """Every voter that fires puts its capped, weighted confidence at position + offset."""
    fires = confidence >= min_confidence
    amplitude = torch.where(
        fires, weights[None] * confidence.clamp(max=confidence_cap), torch.zeros_like(confidence)
    )
    centres = positions + offsets[None]
    maps = vote_maps(centres, amplitude, template, n_templates, size=size, sigma=sigma)
    return _Reading(best_vote(maps), centres, amplitude, maps)


def _kept_maps(
    plain: _Reading, mirror: _Reading, use: torch.Tensor, *, all_templates: bool
) -> torch.Tensor:
    """``[n, size, size]`` the chosen reading's map in the original frame: the sum over
    templates, or the winning template's."""
    if all_templates:
        map_p, map_m = plain.maps.sum(dim=1), mirror.maps.sum(dim=1).flip(-1)
    else:
        rows = torch.arange(len(use))
        map_p = plain.maps[rows, plain.best.template]
        map_m = mirror.maps[rows, mirror.best.template].flip(-1)
    return torch.where(use[:, None, None], map_m, map_p)


def cast_votes(
    positions: dict[bool, torch.Tensor],
    confidence: dict[bool, torch.Tensor],
    offsets: torch.Tensor,
    weights: torch.Tensor,
    template: torch.Tensor,
    n_templates: int,
    *,
    size: int,
    sigma: float,
    min_confidence: float,
    confidence_cap: float,
    keep_maps: bool = False,
    use_mirror: torch.Tensor | None = None,
    all_templates: bool = False,
) -> Votes:
    """Vote in both orientations (``False`` plain, ``True`` mirrored) and keep the better.

    ``positions[o]`` are in orientation ``o``'s frame; offsets ``[K, 2]`` and weights ``[K]`` are
    the template rows; the result is in the original orientation. ``use_mirror`` ``[n]`` fixes
    the orientation per image; by default the reading with the stronger vote wins. With
    ``keep_maps`` the maps are the winning template's, or with ``all_templates`` the sum of every
    template's.
    """
    readings = {}
    for mirrored, pos in positions.items():
        readings[mirrored] = _vote_reading(
            pos,
            confidence[mirrored],
            offsets,
            weights,
            template,
            n_templates,
            size=size,
            sigma=sigma,
            min_confidence=min_confidence,
            confidence_cap=confidence_cap,
        )
    plain, mirror = readings[False], readings.get(True, readings[False])
    if True not in readings:
        use = torch.zeros_like(plain.best.value, dtype=torch.bool)
    elif use_mirror is not None:
        use = use_mirror.to(torch.bool)
    else:
        use = mirror.best.value > plain.best.value
    xy_m = mirror.best.xy.clone()
    xy_m[:, 0] = size - xy_m[:, 0]
    pos_m = positions.get(True, positions[False]).clone()
    pos_m[..., 0] = size - pos_m[..., 0]
    sel = use[:, None]
    return Votes(
        xy=torch.where(sel, xy_m, plain.best.xy),
        template=torch.where(use, mirror.best.template, plain.best.template),
        value=torch.where(use, mirror.best.value, plain.best.value),
        flipped=use,
        centres=torch.where(sel[..., None], mirror.centres, plain.centres),
        amplitude=torch.where(sel, mirror.amplitude, plain.amplitude),
        positions=torch.where(sel[..., None], pos_m, positions[False]),
        maps=_kept_maps(plain, mirror, use, all_templates=all_templates) if keep_maps else None,
    )


def _graph_reading(aog: AndOrGraph, runs: dict[bool, GraphRun]) -> torch.Tensor | None:
    """With ``orientation == "graph"``, per image whether the explanatory graph explains the
    mirrored reading better (docs/method.md §5.5's criterion); otherwise ``None``."""
    plain, mirror = runs.get(False), runs.get(True)
    if (
        aog.settings.orientation == "graph"
        and plain is not None
        and mirror is not None
        and plain.top_soft is not None
        and mirror.top_soft is not None
    ):
        return flip_criterion(plain.top_soft, mirror.top_soft)
    return None


def votes_from_runs(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    runs: dict[bool, GraphRun],
    *,
    keep_maps: bool = False,
    use_mirror: torch.Tensor | None = None,
    all_templates: bool = False,
    inputs: dict[bool, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> Votes:
    """Let the AOG vote on inference runs of the same images, plain (``False``) and mirrored.

    ``use_mirror`` ``[n]`` fixes the orientation per image; ``all_templates`` makes the kept
    maps the sum over templates (see :func:`cast_votes`). Otherwise, with
    ``settings.orientation == "graph"`` and top-layer soft scores in both runs, each image is
    read the way the explanatory graph explains it better (docs/method.md §5.5's criterion).
    ``inputs`` gives per reading the voters' positions and confidences where they do not come
    from ``runs`` (template-anchored search, :mod:`queries.aog.anchor`).
    """
    size = aog.input_size
    if use_mirror is None:
        use_mirror = _graph_reading(aog, runs)
    positions, confidence = {}, {}
    for mirrored, run in runs.items():
        if inputs is not None:
            positions[mirrored], confidence[mirrored] = inputs[mirrored]
        else:
            positions[mirrored], confidence[mirrored] = voter_inputs(aog, layer_names, run)
        if aog.settings.vote_weighting == "equal":  # every firing pattern votes the same
            fires = confidence[mirrored] >= aog.settings.min_confidence
            confidence[mirrored] = fires.float() * max(1.0, aog.settings.min_confidence)
    uses = aog.uses
    return cast_votes(
        positions,
        confidence,
        torch.tensor(uses[["dx", "dy"]].to_numpy(np.float64)).float(),
        torch.tensor(uses["weight"].to_numpy(np.float64)).float(),
        torch.tensor(uses["template"].to_numpy(np.int64)),
        max(t.index for t in aog.templates) + 1,
        size=size,
        sigma=aog.settings.kernel_sigma(size),
        min_confidence=aog.settings.min_confidence,
        confidence_cap=aog.settings.confidence_cap,
        keep_maps=keep_maps,
        use_mirror=use_mirror,
        all_templates=all_templates,
    )


__all__ = [
    "VoteResult",
    "Votes",
    "best_vote",
    "cast_votes",
    "vote_maps",
    "voter_contributions",
    "voter_inputs",
    "votes_from_runs",
]
