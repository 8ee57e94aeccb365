"""Reading images and cutting the object crop that every model sees (docs/method.md §1).

The crop is the object box resized to ``size x size`` with the aspect ratio *not* kept. The map
between original-image pixels and crop pixels is therefore an axis-wise affine map, which
:func:`to_crop_coords` and :func:`from_crop_coords` apply to whole arrays of points at once.
Coordinates are continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``; with ``mirror=True``
the crop is flipped left-right and ``x`` becomes ``size - x``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from explgraph.errors import ImageError, InputError
from miner.data.records import Box


def load_image(path: Path | str) -> Image.Image:
    """Read an image file fully into memory as RGB.

    Raises:
        ImageError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as handle:
            handle.load()  # decode now, so a truncated file fails here and not later
            return handle.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error) or type(error).__name__
        raise ImageError(f"cannot read image {path}: {reason}; remove it or replace it") from error


def full_box(image: Image.Image) -> Box:
    """The box that covers the whole image: what ``box=None`` means everywhere."""
    return (0.0, 0.0, float(image.width), float(image.height))


def _check_box(box: Box) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise InputError(
            f"object box {box} is empty or inverted; boxes are (x0, y0, x1, y1) with x1 > x0 "
            "and y1 > y0: fix the annotation"
        )
    return x0, y0, x1, y1


def crop_to_box(
    image: Image.Image, box: Box | None, size: int, mirror: bool = False
) -> Image.Image:
    """Cut the object box out of ``image`` and resize it to ``size x size`` (aspect not kept).

    ``box=None`` takes the whole image. A box that reaches past the image border is padded with
    black rather than clipped, so the coordinate map of :func:`to_crop_coords` holds exactly.
    ``mirror=True`` flips the crop left-right.
    """
    x0, y0, x1, y1 = _check_box(full_box(image) if box is None else box)
    if x0 < 0 or y0 < 0 or x1 > image.width or y1 > image.height:
        # PIL's resize refuses boxes outside the image: pad just enough, then shift the box.
        left, top = max(0, int(np.ceil(-x0))), max(0, int(np.ceil(-y0)))
        right = max(0, int(np.ceil(x1 - image.width)))
        bottom = max(0, int(np.ceil(y1 - image.height)))
        canvas = Image.new("RGB", (image.width + left + right, image.height + top + bottom))
        canvas.paste(image, (left, top))
        image, (x0, y0, x1, y1) = canvas, (x0 + left, y0 + top, x1 + left, y1 + top)
    crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else crop


def to_crop_coords(xy: np.ndarray, box: Box, size: int, mirror: bool = False) -> np.ndarray:
    """Original-image points (``(..., 2)`` array of ``x, y``) to crop pixels of :func:`crop_to_box`.

    Pass :func:`full_box` of the image for a crop made with ``box=None``.
    """
    x0, y0, x1, y1 = _check_box(box)
    points = np.asarray(xy, dtype=np.float64)
    scale = np.array([size / (x1 - x0), size / (y1 - y0)])
    out = (points - np.array([x0, y0])) * scale
    if mirror:
        out[..., 0] = size - out[..., 0]
    return out


def from_crop_coords(xy: np.ndarray, box: Box, size: int, mirror: bool = False) -> np.ndarray:
    """Crop pixels back to original-image points: the inverse of :func:`to_crop_coords`."""
    x0, y0, x1, y1 = _check_box(box)
    points = np.array(xy, dtype=np.float64)  # a copy: the mirror below must not touch the input
    if mirror:
        points[..., 0] = size - points[..., 0]
    scale = np.array([(x1 - x0) / size, (y1 - y0) / size])
    return points * scale + np.array([x0, y0])


def box_too_small(box: Box | None, min_side: float = 50) -> bool:
    """Whether either side of the box is shorter than ``min_side`` pixels (docs/method.md §1).

    ``None`` (the whole image) is never too small: its size is the image's, unknown here.
    """
    if box is None:
        return False
    x0, y0, x1, y1 = box
    return min(x1 - x0, y1 - y0) < min_side


__all__ = [
    "box_too_small",
    "crop_to_box",
    "from_crop_coords",
    "full_box",
    "load_image",
    "to_crop_coords",
]
