"""Which way to read a new image, and where the part is: the AOG's votes checked against the
part's own appearance.

The AOG votes in both readings of an image (as given and mirrored). On the hard synthetic dev
data (seed 11, toy CNN, head, 5 draws; docs/faithfulness.md) the stronger vote picks the wrong
reading for a quarter of the test objects, and with the reading known the AOG beats
nearest-neighbour transfer (0.059 vs 0.096); whole-crop matching to the shots is no better at
choosing (left/right 0.72). What tells the readings apart is local appearance: the hypercolumns
at the shots' annotated parts, each taken in the orientation the graph read that shot in (the
template's canonical frame, the one the AOG's offsets live in). Reading and location are chosen
together as the arg-max, over both readings, of the vote map (divided by the best vote of either
reading, so the stronger structure still counts) times that similarity raised to
``SelectionSettings.appearance_power``: the graph says where the part can be given the patterns
that fired, the appearance says which of those places looks like the part. The vote map sums
every template's votes (``appearance_map="all"``): the part may be in the pose of any shot, and
the strongest template alone missed the true part in a tenth to a fifth of the dev objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F

from explgraph.core.errors import InputError
from miner.graph import FeatureSource
from queries.aog.descriptors import hypercolumns
from queries.aog.fit import fit_reading
from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun
from queries.aog.vote import Votes, votes_from_runs

APPEARANCE_POOLS = ("max", "mean")


def similarity_maps(
    descriptors: torch.Tensor,
    source: FeatureSource,
    start: int,
    stop: int,
    *,
    mirrored: bool,
    size: int,
    pool: str = "max",
) -> torch.Tensor:
    """``[n, size, size]`` cosine similarity (clipped at 0) to the shot descriptors at every crop
    pixel of images ``start:stop`` read ``mirrored``, returned in the original frame.

    ``pool`` combines the shots: ``"max"`` the best-matching shot, ``"mean"`` the mean over the
    shots (a place must resemble every shot's part, not one of them).
    """
    if pool not in APPEARANCE_POOLS:
        raise InputError(f"appearance pool must be one of {', '.join(APPEARANCE_POOLS)}")
    cols = F.normalize(hypercolumns(source, start, stop, mirrored=mirrored), dim=1)
    per_shot = torch.einsum("ad,ndhw->nahw", descriptors, cols).clamp(min=0.0)
    sim = per_shot.amax(dim=1) if pool == "max" else per_shot.mean(dim=1)
    if mirrored:
        sim = sim.flip(-1)
    return F.interpolate(sim[:, None], size=(size, size), mode="bilinear", align_corners=False)[
        :, 0
    ]


def joint_peak(
    vote_maps: dict[bool, torch.Tensor], similarity: dict[bool, torch.Tensor], power: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick reading and location together: the arg-max over both readings of
    ``vote / (best vote of either reading) * similarity ** power``.

    Args:
        vote_maps: per reading ``[n, S, S]`` the vote map (original frame): every template's
            votes summed, or the winner's (``SelectionSettings.appearance_map``).
        similarity: per reading ``[n, S, S]`` from :func:`similarity_maps`.
        power: sharpness of the appearance term (0: votes alone).

    Returns:
        ``xy`` ``[n, 2]`` (pixel centres, original frame) and ``mirrored`` ``[n]`` bool.
    """
    top = torch.maximum(vote_maps[False].flatten(1).amax(1), vote_maps[True].flatten(1).amax(1))
    top = top.clamp(min=1e-12)[:, None, None]
    joint = torch.stack(
        [vote_maps[m] / top * similarity[m] ** power for m in (False, True)], dim=1
    )  # [n, 2, S, S]
    n, _, height, width = joint.shape
    arg = joint.reshape(n, -1).argmax(dim=1)
    mirrored = arg // (height * width) == 1
    cell = arg % (height * width)
    xy = torch.stack([(cell % width).float(), (cell // width).float()], dim=-1) + 0.5
    return xy, mirrored


def reading_similarities(
    aog: AndOrGraph, descriptors: torch.Tensor, source: FeatureSource, start: int, stop: int
) -> dict[bool, torch.Tensor]:
    """Per reading ``[n, S, S]`` the similarity maps the AOG's appearance check weighs (its
    pool, its crop size)."""
    return {
        mirrored: similarity_maps(
            descriptors,
            source,
            start,
            stop,
            mirrored=mirrored,
            size=aog.input_size,
            pool=aog.settings.appearance_pool,
        )
        for mirrored in (False, True)
    }


def _fitted_reading_only(
    maps: dict[bool, torch.Tensor], mirrored: torch.Tensor
) -> dict[bool, torch.Tensor]:
    """The vote maps with the reading the templates fit worse set to 0, per image (kept where
    the better-fitting reading has no vote at all)."""
    chosen = torch.where(mirrored[:, None, None], maps[True], maps[False])
    voted = chosen.flatten(1).amax(1) > 0
    return {
        m: torch.where(
            ((mirrored == m) | ~voted)[:, None, None], maps[m], torch.zeros_like(maps[m])
        )
        for m in (False, True)
    }


def appearance_votes(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    runs: dict[bool, GraphRun],
    descriptors: torch.Tensor,
    source: FeatureSource,
    start: int,
    stop: int,
    *,
    keep_maps: bool = False,
    similarity: dict[bool, torch.Tensor] | None = None,
    inputs: dict[bool, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> Votes:
    """The AOG's answer on images ``start:stop`` with the appearance check: reading and location
    from :func:`joint_peak` (``descriptors`` from
    :func:`queries.aog.descriptors.canonical_descriptors`); template, voters, explanation (and
    with ``keep_maps`` the vote maps) are those of the chosen reading. ``similarity`` passes
    the similarity maps of :func:`reading_similarities` when the caller already has them (the
    graph-ablation controls of :mod:`queries.aog.controls` share them); ``inputs`` the voters'
    positions and confidences where they do not come from ``runs`` (:mod:`queries.aog.anchor`)."""
    n = stop - start
    all_templates = aog.settings.appearance_map == "all"
    sims = similarity or reading_similarities(aog, descriptors, source, start, stop)
    maps = {}
    for mirrored in (False, True):
        fixed = votes_from_runs(
            aog,
            layer_names,
            runs,
            use_mirror=torch.full((n,), mirrored),
            keep_maps=True,
            all_templates=all_templates,
            inputs=inputs,
        )
        assert fixed.maps is not None
        maps[mirrored] = fixed.maps
    if aog.settings.reading == "template_fit":
        maps = _fitted_reading_only(maps, fit_reading(aog, layer_names, runs, inputs))
    xy, use = joint_peak(maps, sims, aog.settings.appearance_power)
    chosen = votes_from_runs(
        aog,
        layer_names,
        runs,
        use_mirror=use,
        keep_maps=keep_maps,
        all_templates=all_templates,
        inputs=inputs,
    )  # the kept maps are the ones that decided (``locate --vote-maps``)
    return replace(chosen, xy=xy)


__all__ = [
    "APPEARANCE_POOLS",
    "appearance_votes",
    "joint_peak",
    "reading_similarities",
    "similarity_maps",
]
