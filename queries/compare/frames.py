"""The frame two models are compared in: original-image pixels, then object-box units.

Each model sees the object box cropped and resized to its own input size (96 px for the toy CNN,
224 px for MobileNetV2), so crop pixels of two models are not comparable. Positions go back to
original-image pixels (:func:`miner.data.images.from_crop_coords`, applied to all images at once)
and then to *box units*: pixels relative to the box's top-left corner divided by the box
diagonal. Distances in box units are the same whatever the image or input size, so one tolerance
(a fraction of the object's diagonal) fits every image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.records import ImageRecord
from miner.features import FeatureSet
from miner.graph import ExplanatoryGraph, infer_graph


def record_boxes(records: Sequence[ImageRecord]) -> np.ndarray:
    """``[N, 4]`` object boxes ``(x0, y0, x1, y1)``; the whole image where a record has none."""
    from PIL import Image

    boxes = np.empty((len(records), 4), dtype=np.float64)
    for row, record in enumerate(records):  # header reads only for box-less records
        if record.box is not None:
            boxes[row] = record.box
        else:
            with Image.open(record.path) as handle:
                boxes[row] = (0.0, 0.0, float(handle.width), float(handle.height))
    return boxes


def crop_to_image(crop: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Crop pixels ``[N, P, 2]`` of a ``size``-pixel input to original-image pixels.

    The same map as :func:`miner.data.images.from_crop_coords`, with one box per image.
    """
    box = torch.as_tensor(boxes, dtype=torch.float64)
    scale = torch.stack([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]], dim=-1) / size
    return crop.double() * scale[:, None, :] + box[:, None, :2]


def image_to_box_units(points: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """Original-image pixels ``[N, ..., 2]`` to box units (relative to the box, / its diagonal)."""
    box = torch.as_tensor(boxes, dtype=torch.float64)
    diagonal = torch.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    shape = (box.shape[0],) + (1,) * (points.dim() - 2)
    corner = box[:, :2].reshape(*shape, 2)
    return ((points.double() - corner) / diagonal.reshape(*shape, 1)).float()


def landmarks_in_box_units(
    records: Sequence[ImageRecord], names: Sequence[str], boxes: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visible part keypoints in box units ``[N, J, 2]`` and their visibility ``[N, J]``."""
    points = np.zeros((len(records), len(names), 2))
    shown = np.zeros((len(records), len(names)), dtype=bool)
    for i, record in enumerate(records):  # one small dict per image: not a hot loop
        for j, name in enumerate(names):
            keypoint = record.parts.get(name)
            if keypoint is not None and keypoint.visible:
                points[i, j] = (keypoint.x, keypoint.y)
                shown[i, j] = True
    return image_to_box_units(torch.from_numpy(points), boxes), torch.from_numpy(shown)


def iter_in_box_units(
    graph: ExplanatoryGraph,
    features: FeatureSet,
    *,
    input_size: int,
    boxes: np.ndarray,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    description: str = "inferring",
) -> Iterator[tuple[int, int, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """Infer ``graph`` on the images of ``features`` one chunk at a time (memory: one chunk).

    Yields:
        ``start, stop`` (image range) and per layer, bottom→top: positions ``[n, P, 2]`` in box
        units (original orientation) and inference scores ``[n, P]``.
    """
    step = graph.settings.chunk_size
    with progress.task(description, features.num_images) as bar:
        for start in range(0, features.num_images, step):
            stop = min(start + step, features.num_images)
            inference = infer_graph(graph, features, start, stop, device=device)
            chunk_boxes = boxes[start:stop]
            layers = []
            for index in range(len(graph.layers)):
                pixels = crop_to_image(inference.pixels(index, input_size), chunk_boxes, input_size)
                layers.append(
                    (image_to_box_units(pixels, chunk_boxes), inference.layers[index].score)
                )
            yield start, stop, layers
            bar.advance(stop - start)


def infer_in_box_units(
    graph: ExplanatoryGraph,
    features: FeatureSet,
    *,
    input_size: int,
    boxes: np.ndarray,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    description: str = "inferring",
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Infer ``graph`` on every image of ``features``, all held (``[N, P]``: prefer
    :func:`iter_in_box_units`, which compare streams over).

    Returns:
        Per layer, bottom→top: positions ``[N, P, 2]`` in box units (original orientation) and
        inference scores ``[N, P]``.
    """
    out: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in graph.layers]
    for _, _, layers in iter_in_box_units(
        graph,
        features,
        input_size=input_size,
        boxes=boxes,
        device=device,
        progress=progress,
        description=description,
    ):
        for index, layer in enumerate(layers):
            out[index].append(layer)
    return [(torch.cat([p for p, _ in rows]), torch.cat([s for _, s in rows])) for rows in out]


__all__ = [
    "crop_to_image",
    "image_to_box_units",
    "infer_in_box_units",
    "iter_in_box_units",
    "landmarks_in_box_units",
    "record_boxes",
]
