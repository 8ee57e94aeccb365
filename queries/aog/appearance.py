"""Which way to read a new image: check the AOG's answer against the part's own appearance.

The AOG votes in both readings of an image (as given and mirrored); each reading proposes a
part location. On the hard synthetic dev data (seeds 11, docs/faithfulness.md) the stronger
vote picks the wrong reading for a quarter to a third of the test objects, and with the reading
known the AOG beats nearest-neighbour transfer (toy CNN head: 0.059 vs 0.096). Whole-crop
matching to the shots is no better at this (0.72 left/right on the toy CNN). What does tell the
readings apart is local: the hypercolumn at each reading's proposed location compared with the
hypercolumns at the annotated parts of the shots, each taken in the orientation the graph read
that shot in (the template's canonical frame, the one the AOG's offsets live in). The reading
whose proposal looks more like the annotated part wins; a one-unit tolerance (3x3 max) absorbs
the rounding of the proposal to the feature map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from miner.graph import FeatureSource
from queries.aog.baselines import finest_geometry, hypercolumns
from queries.aog.locate import Votes, votes_from_runs
from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun

TOLERANCE_UNITS = 1  # proposal rounding: compare with the best unit within this many units


def canonical_descriptors(
    source: FeatureSource, parts: np.ndarray, flipped: Sequence[bool], *, size: int
) -> torch.Tensor:
    """``[A, D]`` unit hypercolumns at each shot's part, read the way the graph read the shot.

    Args:
        source: features of the shot images (row ``a`` is shot ``a``).
        parts: ``[A, 2]`` part centres, crop pixels of the original orientation.
        flipped: per shot, whether the graph read it mirrored (its template's frame).
        size: crop side.
    """
    geometry = finest_geometry(source)
    rows = []
    for mirrored in (False, True):
        cols = hypercolumns(source, 0, source.num_images, mirrored=mirrored)
        xy = torch.from_numpy(np.asarray(parts, dtype=np.float64)).float().clone()
        if mirrored:
            xy[:, 0] = size - xy[:, 0]
        units = geometry.to_units(xy).round().long()
        ux = units[:, 0].clamp(0, geometry.width - 1)
        uy = units[:, 1].clamp(0, geometry.height - 1)
        rows.append(F.normalize(cols[torch.arange(len(xy)), :, uy, ux], dim=1))
    use = torch.tensor(list(flipped), dtype=torch.bool)[:, None]
    return torch.where(use, rows[1], rows[0])


def appearance_at(
    descriptors: torch.Tensor,
    source: FeatureSource,
    start: int,
    stop: int,
    xy: torch.Tensor,
    *,
    mirrored: bool,
) -> torch.Tensor:
    """``[n]`` best cosine similarity of any shot descriptor near ``xy`` ``[n, 2]`` (crop px in
    the frame of the reading ``mirrored``) on images ``start:stop`` read that way."""
    geometry = finest_geometry(source)
    cols = F.normalize(hypercolumns(source, start, stop, mirrored=mirrored), dim=1)
    sim = torch.einsum("ad,ndhw->nahw", descriptors, cols).amax(dim=1)  # [n, h, w]
    width = 2 * TOLERANCE_UNITS + 1
    sim = F.max_pool2d(sim[:, None], width, stride=1, padding=TOLERANCE_UNITS)[:, 0]
    units = geometry.to_units(xy.float()).round().long()
    ux = units[:, 0].clamp(0, geometry.width - 1)
    uy = units[:, 1].clamp(0, geometry.height - 1)
    return sim[torch.arange(len(xy)), uy, ux]


def choose_reading(plain: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """``[n]`` True where the mirrored reading's proposal matches the part better (ties: the
    image as given)."""
    return mirrored > plain


def appearance_votes(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    runs: dict[bool, GraphRun],
    descriptors: torch.Tensor,
    source: FeatureSource,
    start: int,
    stop: int,
) -> Votes:
    """The AOG's votes on images ``start:stop``, each image read the way whose proposal looks
    more like the shots' annotated part (``descriptors`` from :func:`canonical_descriptors`)."""
    size = aog.input_size
    n = stop - start
    score = {}
    for mirrored in (False, True):
        fixed = votes_from_runs(aog, layer_names, runs, use_mirror=torch.full((n,), mirrored))
        at = fixed.xy.clone()
        if mirrored:
            at[:, 0] = size - at[:, 0]  # the proposal in the mirrored reading's own frame
        score[mirrored] = appearance_at(descriptors, source, start, stop, at, mirrored=mirrored)
    use = choose_reading(score[False], score[True])
    return votes_from_runs(aog, layer_names, runs, use_mirror=use)


__all__ = [
    "TOLERANCE_UNITS",
    "appearance_at",
    "appearance_votes",
    "canonical_descriptors",
    "choose_reading",
]
