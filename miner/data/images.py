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

from explgraph.core.errors import ImageError, InputError
from miner.data.records import Box

# PIL modes of single-channel images deeper than 8 bits; ``convert("RGB")`` clips them at 255,
# which turns a 16-bit grayscale PNG white.
_DEEP_GRAY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _deep_gray_to_rgb(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit / float) grayscale image scaled to 8 bits, as RGB.

    16-bit files (``I;16*``, and ``I`` whose values exceed 255) are divided by 257, which maps
    0..65535 onto 0..255 exactly; float images in 0..1 are multiplied by 255.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and values.size and float(np.nanmax(values)) <= 1.0:
        values = values * 255.0
    elif image.mode.startswith("I;16") or (values.size and float(values.max()) > 255.0):
        values = values / 257.0
    gray = np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def load_image(path: Path | str) -> Image.Image:
    """Read an image file fully into memory as RGB (16-bit grayscale scaled to 8 bits).

    Raises:
        ImageError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as handle:
            handle.load()  # decode now, so a truncated file fails here and not later
            if handle.mode in _DEEP_GRAY:
                return _deep_gray_to_rgb(handle)
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
    black rather than clipped, so the coordinate map of :func:`to_crop_coords` holds exactly;
    the padding is drawn on the ``size x size`` output, never on a box-sized canvas (a box of
    20000 px around a 128 px image costs no more memory than one inside it).
    ``mirror=True`` flips the crop left-right.
    """
    x0, y0, x1, y1 = _check_box(full_box(image) if box is None else box)
    if x0 < 0 or y0 < 0 or x1 > image.width or y1 > image.height:
        crop = _padded_crop(image, (x0, y0, x1, y1), size)
    else:
        crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else crop


def _padded_crop(image: Image.Image, box: Box, size: int) -> Image.Image:
    """The crop of a box that reaches past the image: black output, the visible part pasted in.

    The visible part lands on whole output pixels; its source rectangle is the exact preimage
    of those pixels under the box → crop map, so :func:`to_crop_coords` still holds.
    """
    x0, y0, x1, y1 = box
    canvas = Image.new("RGB", (size, size))
    scale_x, scale_y = size / (x1 - x0), size / (y1 - y0)
    left = min(size, max(0, round((max(x0, 0.0) - x0) * scale_x)))
    top = min(size, max(0, round((max(y0, 0.0) - y0) * scale_y)))
    right = min(size, max(0, round((min(x1, float(image.width)) - x0) * scale_x)))
    bottom = min(size, max(0, round((min(y1, float(image.height)) - y0) * scale_y)))
    if right <= left or bottom <= top:
        return canvas  # the box misses the image entirely
    source = (
        min(max(x0 + left / scale_x, 0.0), float(image.width)),
        min(max(y0 + top / scale_y, 0.0), float(image.height)),
        min(max(x0 + right / scale_x, 0.0), float(image.width)),
        min(max(y0 + bottom / scale_y, 0.0), float(image.height)),
    )
    part = image.resize((right - left, bottom - top), Image.Resampling.BILINEAR, box=source)
    canvas.paste(part, (left, top))
    return canvas


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
