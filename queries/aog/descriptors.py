"""What a place or a crop looks like to the CNN: hypercolumn and whole-crop descriptors.

A hypercolumn is every layer's mass at one place, L2-normalised per layer and upsampled to the
finest layer's map. The shots' hypercolumns at their annotated part are what the appearance
check (:mod:`queries.aog.appearance`) and the nearest-neighbour baseline
(:mod:`queries.aog.baselines`) compare new images against; the whole-crop descriptor is the
facing prior's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from miner.graph import FeatureSource
from miner.models.spec import LayerGeometry

POOL_GRID = 4  # whole-crop descriptor: every layer average-pooled to POOL_GRID x POOL_GRID


def finest_geometry(source: FeatureSource) -> LayerGeometry:
    """The layer whose map the hypercolumns live on (the first one with the largest map)."""
    return max(source.layers, key=lambda g: g.height * g.width)


def hypercolumns(source: FeatureSource, start: int, stop: int, *, mirrored: bool) -> torch.Tensor:
    """``[n, D, H, W]`` every layer's mass, L2-normalised per layer and position, upsampled to
    the finest layer's map (the first one with the largest map)."""
    finest = finest_geometry(source)
    parts = []
    for layer in range(len(source.layers)):
        mass = source.chunk(layer, start, stop, flipped=mirrored)
        if mass.shape[-2:] != (finest.height, finest.width):
            mass = F.interpolate(
                mass, size=(finest.height, finest.width), mode="bilinear", align_corners=False
            )
        parts.append(F.normalize(mass, dim=1))
    return torch.cat(parts, dim=1)


def _at_units(cols: torch.Tensor, geometry: LayerGeometry, xy: torch.Tensor) -> torch.Tensor:
    """``[A, D]`` unit hypercolumns of ``cols`` row ``a`` at the unit nearest ``xy[a]`` (px)."""
    units = geometry.to_units(xy).round().long()
    ux = units[:, 0].clamp(0, geometry.width - 1)
    uy = units[:, 1].clamp(0, geometry.height - 1)
    return F.normalize(cols[torch.arange(len(xy)), :, uy, ux], dim=1)


def shot_descriptors(source: FeatureSource, parts: np.ndarray, *, size: int) -> torch.Tensor:
    """``[A, D]`` the hypercolumn at each shot's part (shots read plain; nearest unit)."""
    cols = hypercolumns(source, 0, source.num_images, mirrored=False)
    return _at_units(cols, finest_geometry(source), torch.from_numpy(parts).float())


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
        rows.append(_at_units(cols, geometry, xy))
    use = torch.tensor(list(flipped), dtype=torch.bool)[:, None]
    return torch.where(use, rows[1], rows[0])


def crop_descriptors(
    source: FeatureSource, start: int, stop: int, *, mirrored: bool
) -> torch.Tensor:
    """``[n, D]`` whole-crop descriptors: each layer's mass average-pooled to a coarse grid,
    L2-normalised per layer, concatenated and normalised (keeps the layout, so it sees facing)."""
    parts = []
    for layer in range(len(source.layers)):
        mass = source.chunk(layer, start, stop, flipped=mirrored)
        pooled = F.adaptive_avg_pool2d(mass, POOL_GRID).flatten(1)
        parts.append(F.normalize(pooled, dim=1))
    return F.normalize(torch.cat(parts, dim=1), dim=1)


__all__ = [
    "POOL_GRID",
    "canonical_descriptors",
    "crop_descriptors",
    "finest_geometry",
    "hypercolumns",
    "shot_descriptors",
]
