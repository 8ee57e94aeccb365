"""Baselines run in the same part-localisation benchmark as the AOG (docs/method.md §7.2).

- ``raw_filters``: the AOG's voting with raw filters instead of graph nodes. A filter's
  "position" is its arg-max unit, its confidence its peak mass over the filter's mean peak on
  the mined images; templates are chosen from the same shots with the same rule (no firing-image
  term: raw filters have no stored firings).
- ``nn_transfer``: nearest-neighbour transfer of the annotation by conv-feature matching: the
  hypercolumn (every graph layer, L2-normalised per layer, upsampled to the finest map) at the
  annotated part of each shot is matched against every position of the new image, both
  orientations; the best match is the prediction.
- ``static_prior``: the mean annotated position in the crop, whatever the image.
- ``facing_prior``: a static prior that knows which way the object faces: the whole crop's
  features (every layer pooled to a coarse grid) are matched against each shot's, plain and
  mirrored; the best-matching shot's part position, mirrored if the mirror matched, is the answer.
- ``oracle_facing_prior`` (a reference, not a method: it reads the test truth): the shots' part
  positions folded onto one half of the crop, averaged, and put on the half where the test
  object's part really is.

- ``appearance_alone`` and ``appearance_shot_prior``: the graph-ablation controls of
  :mod:`queries.aog.controls` (the AOG's answer with its vote map replaced by a constant, or by
  Gaussians at the shots' part positions).

All but the oracle see exactly what the AOG sees: the shots and the test images, nothing else.
The hypercolumn and whole-crop descriptors live in :mod:`queries.aog.descriptors`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from miner.graph import FeatureSource
from miner.models.spec import LayerGeometry
from queries.aog.controls import CONTROLS
from queries.aog.descriptors import crop_descriptors, finest_geometry, hypercolumns
from queries.aog.model import AndOrGraph, TemplateInfo
from queries.aog.runtime import GraphRun
from queries.aog.select import SelectionSettings, score_candidates, select_patterns
from queries.aog.vote import Votes, votes_from_runs
from queries.stability import filter_argmax_positions

BASELINES = ("raw_filters", "nn_transfer", "static_prior", "facing_prior", *CONTROLS)
REFERENCES = ("oracle_facing_prior",)  # read the test truth: shown, never compared against


def filter_reference_peaks(source: FeatureSource, chunk: int = 64) -> list[torch.Tensor]:
    """Per layer ``[C]``: each filter's mean peak mass over the images of ``source``."""
    peaks = []
    for layer, geometry in enumerate(source.layers):
        total = torch.zeros(geometry.channels)
        for start in range(0, source.num_images, chunk):
            stop = min(start + chunk, source.num_images)
            total += source.chunk(layer, start, stop).flatten(2).amax(dim=2).sum(dim=0)
        peaks.append(total / max(source.num_images, 1))
    return peaks


def filter_run(
    source: FeatureSource,
    start: int,
    stop: int,
    *,
    mirrored: bool,
    reference: list[torch.Tensor],
) -> GraphRun:
    """Raw filters as if they were patterns: arg-max positions (crop px, that orientation's
    frame) and peak / mean peak as confidence."""
    pixels, confidence = [], []
    for layer, geometry in enumerate(source.layers):
        mass = source.chunk(layer, start, stop, flipped=mirrored)
        pos, peak = filter_argmax_positions(mass, geometry.stride, geometry.rf_offset)
        pixels.append(pos)
        confidence.append(peak / reference[layer].clamp(min=1e-12)[None])
    flags = torch.full((stop - start,), mirrored, dtype=torch.bool)
    return GraphRun(pixels, confidence, flags, 0.0)


def _filter_candidates(
    shot_run: GraphRun,
    parts: np.ndarray,
    members: np.ndarray,
    layer: int,
    geometry: LayerGeometry,
    *,
    size: int,
    settings: SelectionSettings,
) -> pd.DataFrame:
    """One layer's raw filters near the part of a template's shots: mean offset, confidence,
    and the offset's spread over the shots (one shot: the filter's finest deformation range)."""
    px = shot_run.pixels[layer][members].numpy().astype(np.float64)  # [A, C, 2]
    conf = shot_run.confidence[layer][members].numpy().astype(np.float64).mean(0)
    delta = parts[members][:, None, :] - px
    mean = delta.mean(0)
    ok = (np.hypot(mean[:, 0], mean[:, 1]) <= settings.radius * size) & (
        conf >= settings.min_confidence
    )
    idx = np.flatnonzero(ok)
    if len(members) >= 2:
        prior = ((delta[:, idx] - mean[None, idx]) ** 2).sum(-1).mean(0)
    else:  # one unit is a filter's finest deformation range
        prior = np.full(len(idx), float(geometry.stride) ** 2)
    return pd.DataFrame(
        {
            "layer": geometry.name,
            "idx": idx,
            "pattern_id": [f"filter:{geometry.name}/{i}" for i in idx],
            "dx": mean[idx, 0],
            "dy": mean[idx, 1],
            "confidence": conf[idx],
            "prior_var": prior,
            "fire_var": np.nan,
        }
    )


def build_filter_aog(
    shot_run: GraphRun,
    parts: np.ndarray,
    templates: np.ndarray,
    layers: list[LayerGeometry],
    *,
    model_id: str,
    part: str,
    size: int,
    settings: SelectionSettings,
) -> AndOrGraph:
    """Templates of raw filters from the shots (read plain), with the AOG's selection rule.

    ``parts`` ``[A, 2]`` crop px of each shot, ``templates`` ``[A]`` their template.
    """
    kept_frames, infos = [], []
    for t in sorted(set(templates.tolist())):
        members = np.flatnonzero(templates == t)
        frames = [
            _filter_candidates(
                shot_run, parts, members, layer, geometry, size=size, settings=settings
            )
            for layer, geometry in enumerate(layers)
        ]
        scored = score_candidates(pd.concat(frames, ignore_index=True), settings, size)
        kept, cuts = select_patterns(scored, settings)
        total = float(kept["weight"].sum())
        kept_frames.append(
            kept.assign(template=t, weight=kept["weight"] / total if total > 0 else 0.0)
        )
        part_xy = parts[members].mean(0)
        infos.append(TemplateInfo(t, "", "", float(part_xy[0]), float(part_xy[1]), cuts=cuts))
    uses = pd.concat(kept_frames, ignore_index=True)
    return AndOrGraph(
        model_id=model_id,
        part=part,
        input_size=size,
        settings=settings,
        templates=infos,
        uses=uses[["template", "pattern_id", "layer", "idx", "dx", "dy", "weight"]],
        source="raw filters",
    )


def filter_votes(
    aog: AndOrGraph,
    source: FeatureSource,
    start: int,
    stop: int,
    reference: list[torch.Tensor],
) -> Votes:
    """The raw-filter AOG's answer on images ``start:stop`` (both orientations)."""
    runs = {
        m: filter_run(source, start, stop, mirrored=m, reference=reference) for m in (False, True)
    }
    return votes_from_runs(aog, [g.name for g in source.layers], runs)


def nn_transfer(
    descriptors: torch.Tensor, source: FeatureSource, start: int, stop: int, *, size: int
) -> torch.Tensor:
    """``[n, 2]`` crop px (original orientation) of the best match of any shot descriptor."""
    geometry = finest_geometry(source)
    best_value, best_xy = None, None
    for mirrored in (False, True):
        cols = F.normalize(hypercolumns(source, start, stop, mirrored=mirrored), dim=1)
        sim = torch.einsum("ad,ndhw->nahw", descriptors, cols)
        n, a, h, w = sim.shape
        value, arg = sim.reshape(n, a * h * w).max(dim=1)
        cell = arg % (h * w)
        units = torch.stack([(cell % w).float(), (cell // w).float()], dim=-1)
        xy = geometry.to_pixels(units)
        if mirrored:
            xy[:, 0] = size - xy[:, 0]
        if best_value is None or best_xy is None:
            best_value, best_xy = value, xy
        else:
            better = value > best_value
            best_xy = torch.where(better[:, None], xy, best_xy)
            best_value = torch.where(better, value, best_value)
    assert best_xy is not None
    return best_xy


def static_prior(parts: np.ndarray, n: int) -> torch.Tensor:
    """``[n, 2]`` the shots' mean part position, for every image."""
    return torch.from_numpy(parts.mean(0)).float()[None].expand(n, 2).clone()


def facing_prior(
    shot_descriptors: torch.Tensor,
    parts: np.ndarray,
    source: FeatureSource,
    start: int,
    stop: int,
    *,
    size: int,
) -> torch.Tensor:
    """``[n, 2]`` the part position of the shot whose whole crop matches best, plain or mirrored
    (then the position is mirrored too). ``shot_descriptors`` from
    :func:`queries.aog.descriptors.crop_descriptors`."""
    sims = torch.stack(
        [
            crop_descriptors(source, start, stop, mirrored=m) @ shot_descriptors.T
            for m in (False, True)
        ],
        dim=1,
    )  # [n, 2 orientations, A shots]
    n, _, shots = sims.shape
    best = sims.reshape(n, -1).argmax(dim=1)
    mirrored, shot = best // shots, best % shots
    xy = torch.from_numpy(parts).float()[shot]
    xy[:, 0] = torch.where(mirrored.bool(), size - xy[:, 0], xy[:, 0])
    return xy


def oracle_facing_prior(parts: np.ndarray, truth: torch.Tensor, *, size: int) -> torch.Tensor:
    """``[n, 2]`` reference only: the shots' mean part position with x folded onto the right
    half, put on the half of the crop where each test object's part truly is."""
    folded = parts.copy().astype(np.float64)
    folded[:, 0] = np.maximum(folded[:, 0], size - folded[:, 0])
    mean = torch.from_numpy(folded.mean(0)).float()
    right = truth[:, 0] >= size / 2.0
    x = torch.where(right, mean[0], size - mean[0])
    return torch.stack([x, mean[1].expand_as(x)], dim=-1)


__all__ = [
    "BASELINES",
    "REFERENCES",
    "build_filter_aog",
    "facing_prior",
    "filter_reference_peaks",
    "filter_run",
    "filter_votes",
    "nn_transfer",
    "oracle_facing_prior",
    "static_prior",
]
