"""The images an explainer is trained and evaluated on: object crops with labels and parts.

Either the records of an annotated dataset (``explgraph dataset synth DIR`` writes one) or the
synthetic parts dataset rendered in memory; the two give the same crops for the same seed (the
dataset's PNG files are lossless). Parts are in crop pixels, as ``bench/interpretable.py`` and
:mod:`queries.filter_parts` use them. No part annotation is used to *train* an explainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explgraph.core.errors import ImageError, InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.images import crop_to_box, full_box, load_image, to_crop_coords
from miner.data.records import Box, ImageRecord, Keypoint


@dataclass
class AnnotatedCrops:
    """Object crops in memory with their labels and visible parts.

    Attributes:
        images: uint8 ``N x 3 x S x S``.
        labels: the category of each crop (``None`` when unlabelled).
        landmarks: ``N x J x 2`` part positions in crop pixels (x, y); ``visible`` ``N x J``.
        part_names: the ``J`` part names, sorted.
    """

    images: torch.Tensor
    labels: list[str | None]
    landmarks: torch.Tensor
    visible: torch.Tensor
    part_names: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """The side of the crops in pixels."""
        return int(self.images.shape[-1])


@dataclass(frozen=True)
class _Crop:
    image: np.ndarray
    label: str | None
    parts: Mapping[str, Keypoint]
    box: Box


def _cut(image: Image.Image, box: Box | None, size: int) -> tuple[np.ndarray, Box]:
    box = box if box is not None else full_box(image)
    return np.asarray(crop_to_box(image, box, size), dtype=np.uint8), box


def _assemble(crops: Sequence[_Crop], size: int) -> AnnotatedCrops:
    """Stack the crops and put every visible part into crop pixels."""
    names = sorted({name for crop in crops for name in crop.parts})
    points = np.zeros((len(crops), len(names), 2))
    shown = np.zeros((len(crops), len(names)), dtype=bool)
    for i, crop in enumerate(crops):  # a few parts per crop: bookkeeping, not tensor work
        for j, name in enumerate(names):
            keypoint = crop.parts.get(name)
            if keypoint is not None and keypoint.visible:
                points[i, j] = to_crop_coords(np.array([keypoint.x, keypoint.y]), crop.box, size)
                shown[i, j] = True
    images = torch.from_numpy(np.stack([c.image for c in crops])).permute(0, 3, 1, 2)
    return AnnotatedCrops(
        images=images.contiguous(),
        labels=[c.label for c in crops],
        landmarks=torch.from_numpy(points).float(),
        visible=torch.from_numpy(shown),
        part_names=names,
    )


def record_crops(
    records: Iterable[ImageRecord], size: int, progress: Progress = NULL_PROGRESS
) -> AnnotatedCrops:
    """The object crops of ``records`` (image files read one by one) at ``size`` pixels.

    Raises:
        InputError: no records, or an image cannot be read (the message names it).
    """
    records = list(records)
    if not records:
        raise InputError("no images to crop; check the dataset, its split and its labels")
    crops = []
    with progress.task("cropping images", len(records)) as bar:
        for record in records:
            try:
                image = load_image(record.path)
            except ImageError as error:
                raise InputError(f"{error}; fix or remove the image") from error
            pixels, box = _cut(image, record.box, size)
            crops.append(_Crop(pixels, record.label, record.parts, box))
            bar.advance()
    return _assemble(crops, size)


def synthetic_crops(
    n: int,
    seed: int,
    split: str,
    size: int,
    *,
    image_size: int = 128,
    progress: Progress = NULL_PROGRESS,
) -> AnnotatedCrops:
    """The ``split`` crops of the synthetic parts dataset of ``n`` images and ``seed``, rendered
    in memory (the same crops as ``explgraph dataset synth DIR --n N --seed SEED`` gives)."""
    from miner.data.synthetic import iter_samples

    crops = []
    with progress.task(f"rendering synthetic images ({split})", n) as bar:
        for sample in iter_samples(n, image_size, seed):
            bar.advance()
            if sample.split != split:
                continue
            pixels, box = _cut(Image.fromarray(sample.image), sample.box, size)
            crops.append(_Crop(pixels, sample.label, sample.parts, box))
    if not crops:
        raise InputError(f"no {split} images among {n} synthetic ones; raise --n")
    return _assemble(crops, size)


__all__ = ["AnnotatedCrops", "record_crops", "synthetic_crops"]
