"""Which way an annotated object faces, and how often a reading choice gets it right.

The facing is read off the annotations: an object faces left when its head lies left of its
tail in the crop (both keypoints visible; otherwise unknown). The synthetic generator draws
every object facing right in its own frame and mirrors half of them, and rotation stays within
±60° in the hard data, so the head-tail order gives the drawn facing.

A reading choice (an image read as given or mirrored) says nothing about the facing by itself:
it says "this image looks like the frame I was built in". That frame's facing is estimated from
the shots, which are training images: each shot's annotated facing, mirrored where the graph
read it mirrored, is the facing of its template's canonical frame; the majority over the shots
is the frame's facing. A reading then implies a facing (the frame's, flipped when the image is
read mirrored), and its accuracy is the share of test objects with a known facing where that
implied facing is the annotated one. A coin scores 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from miner.data.images import full_box, load_image, to_crop_coords
from miner.data.records import ImageRecord

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


__all__ = [
    "FACING_PARTS",
    "canonical_facing",
    "faces_left",
    "majority_facing",
    "reading_accuracy",
]
