"""Which way an annotated object faces, and how often a reading choice gets it right.

The facing is read off the annotations: an object faces left when its head lies left of its
tail in the crop (both keypoints visible; otherwise unknown). The synthetic generator draws
every object facing right in its own frame and mirrors half of them, and rotation stays within
±60° in the hard data, so the head-tail order gives the drawn facing.

A reading choice (an image read as given or mirrored) says nothing about the facing by itself:
it says "this image looks like the frame I was built in". That frame's facing is estimated on
training images only: each image's annotated facing, mirrored where the graph reads it mirrored,
is the facing of the frame it was read in; the majority is the graph's frame
(:func:`graph_frame`, on the training split; for one shot set, on its shots, whose readings are
also their templates' canonical frames). A reading then implies a facing (the frame's, flipped
when the image is read mirrored), and its accuracy is the share of test objects with a known
facing where that implied facing is the annotated one. A coin scores 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from miner.data.images import full_box, load_image, to_crop_coords
from miner.data.records import ImageRecord
from queries.aog.runtime import run_graph
from queries.loaded import LoadedGraph

CHUNK = 32  # images per inference chunk

FACING_PARTS = ("head", "tail")  # faces left when the first lies left of the second


def faces_left(records: Sequence[ImageRecord], size: int) -> torch.Tensor:
    """``[n]`` 1.0 where the object faces left in its crop, 0.0 right, NaN unknown."""
    front, back = FACING_PARTS
    out = torch.full((len(records),), float("nan"))
    for i, record in enumerate(records):  # two keypoints per image: not a hot loop
        shown = record.visible_parts()
        if front not in shown or back not in shown:
            continue
        box = record.box or full_box(load_image(record.path))
        xs = [
            to_crop_coords(np.array([shown[name].x, shown[name].y]), box, size)[0]
            for name in (front, back)
        ]
        if xs[0] != xs[1]:
            out[i] = 1.0 if xs[0] < xs[1] else 0.0
    return out


def canonical_facing(shot_left: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """``[A]`` facing (1 left, 0 right, NaN unknown) of each shot's canonical frame: its own
    facing, mirrored where the graph read it mirrored."""
    mirrored = 1.0 - shot_left
    return torch.where(flipped.to(torch.bool), mirrored, shot_left)


def majority_facing(canonical: Sequence[float]) -> float:
    """1.0 (left) or 0.0 (right): the facing of most known canonical frames; NaN if none is
    known or they split evenly."""
    known = [v for v in canonical if not math.isnan(v)]
    if not known:
        return float("nan")
    left = sum(known) / len(known)
    return float("nan") if left == 0.5 else float(left > 0.5)


def reading_accuracy(mirrored: torch.Tensor, truth_left: torch.Tensor, frame_left: float) -> float:
    """Share of objects of known facing where the reading's implied facing (``frame_left``,
    flipped where ``mirrored``) is the annotated one; NaN when nothing is known."""
    known = ~truth_left.isnan()
    if math.isnan(frame_left) or not bool(known.any()):
        return float("nan")
    implied = torch.where(mirrored.to(torch.bool), 1.0 - frame_left, frame_left)
    return float((implied[known] == truth_left[known]).float().mean())


@dataclass(frozen=True)
class GraphFrame:
    """The facing of the frame the graph reads images in, from training images."""

    faces_left: float  # 1.0 left, 0.0 right, NaN unknown
    agreement: float  # share of those images read in that frame (0.5: the reading is a coin)
    n_images: int  # images of known facing it was estimated on


def graph_frame(loaded: LoadedGraph, records: Sequence[ImageRecord]) -> GraphFrame:
    """The graph's frame from its own reading (flip criterion) of ``records`` (training images)."""
    known = [r for r in records if not math.isnan(float(faces_left([r], loaded.input_size)[0]))]
    if not known:
        return GraphFrame(float("nan"), float("nan"), 0)
    statistics = loaded.mining_statistics()
    prepared = loaded.prepare_images(known, statistics=statistics)
    n = prepared.features.num_images
    flips = torch.cat(
        [
            run_graph(
                loaded.graph, prepared.features, s, min(s + CHUNK, n), orientation="auto",
                device=loaded.device,
            ).flipped.cpu()
            for s in range(0, n, CHUNK)
        ]
    )  # fmt: skip
    frames = canonical_facing(
        faces_left([known[i] for i in prepared.kept], loaded.input_size), flips
    )
    frame = majority_facing(frames.tolist())
    agreement = float((frames == frame).float().mean()) if not math.isnan(frame) else 0.5
    return GraphFrame(frame, agreement, len(frames))


__all__ = [
    "FACING_PARTS",
    "GraphFrame",
    "canonical_facing",
    "faces_left",
    "graph_frame",
    "majority_facing",
    "reading_accuracy",
]
