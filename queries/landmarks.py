"""Part keypoints of annotated images as landmarks: tensors in model-input (crop) pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explgraph.core.errors import InputError
from miner.data.records import ImageRecord


def landmark_names(records: Sequence[ImageRecord], *, needed_by: str) -> list[str]:
    """The part names visible in any of ``records``, sorted.

    Raises:
        InputError: none is visible (``needed_by`` names what wanted them).
    """
    names = sorted({name for record in records for name in record.visible_parts()})
    if not names:
        raise InputError(
            f"the annotations have no visible part keypoints: {needed_by} needs landmarks"
        )
    return names


def annotated_points(
    records: Sequence[ImageRecord], names: Sequence[str], size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every annotated keypoint in crop pixels ``[N, J, 2]``, whether it is visible ``[N, J]``,
    and whether it is annotated at all ``[N, J]`` (occluded keypoints keep their position)."""
    from miner.data.images import full_box, load_image, to_crop_coords

    points = np.zeros((len(records), len(names), 2))
    shown = np.zeros((len(records), len(names)), dtype=bool)
    known = np.zeros((len(records), len(names)), dtype=bool)
    for i, record in enumerate(records):  # one small dict per image: not a hot loop
        box = record.box if record.box is not None else full_box(load_image(record.path))
        for j, name in enumerate(names):
            keypoint = record.parts.get(name)
            if keypoint is not None:
                points[i, j] = to_crop_coords(np.array([keypoint.x, keypoint.y]), box, size)
                shown[i, j] = bool(keypoint.visible)
                known[i, j] = True
    return (
        torch.from_numpy(points).float(),
        torch.from_numpy(shown),
        torch.from_numpy(known),
    )


def visible_landmarks(
    records: Sequence[ImageRecord], names: Sequence[str], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visible keypoints in crop pixels ``[N, J, 2]`` (0 where not visible) and visibility
    ``[N, J]``."""
    points, shown, _ = annotated_points(records, names, size)
    return torch.where(shown[..., None], points, 0.0), shown


__all__ = ["annotated_points", "landmark_names", "visible_landmarks"]
