"""Object boxes checked against their image before mining: clipped, or the image skipped.

A box that reaches past the image border would be mined on black padding (the crop keeps the
box → crop map exact by padding) and stored as if it were the object. Before extraction every
box is compared with its image's size (read from the file header only, no decoding):

* wholly outside the image: the image is always skipped, with its name and the reason;
* partly outside: ``clip`` (the default) replaces the box by its part inside the image,
  ``refuse`` skips the image.

``clip`` is the default because boxes one or two pixels past the border are common in real
annotation files (rounding, 1-based tools) and the clipped box is what the annotator meant;
the clipped box is what gets stored, so keypoints and firings keep a consistent crop map.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from explgraph.core.errors import InputError
from miner.data.records import ImageRecord

BOX_POLICIES = ("clip", "refuse")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedImage:
    """An input image left out of a run, and why."""

    path: Path
    reason: str


@dataclass
class FittedBoxes:
    """The records to use (boxes inside their images), the images skipped, how many clipped."""

    records: list[ImageRecord]
    skipped: list[SkippedImage]
    clipped: int


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as handle:  # reads the header only
            return handle.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None  # unreadable: feature extraction skips it and says why


def _box_text(box: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def fit_boxes(records: Sequence[ImageRecord], policy: str = "clip") -> FittedBoxes:
    """Check every record's box against its image size; clip or skip per ``policy``.

    Raises:
        InputError: ``policy`` is not ``clip`` or ``refuse``.
    """
    if policy not in BOX_POLICIES:
        raise InputError(f"--boxes must be one of {', '.join(BOX_POLICIES)}, not {policy!r}")
    kept: list[ImageRecord] = []
    skipped: list[SkippedImage] = []
    clipped = 0
    for record in records:
        size = _image_size(record.path) if record.box is not None else None
        if record.box is None or size is None:
            kept.append(record)
            continue
        width, height = size
        x0, y0, x1, y1 = record.box
        inside = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
        if inside == (x0, y0, x1, y1):
            kept.append(record)
        elif inside[2] <= inside[0] or inside[3] <= inside[1]:
            skipped.append(
                SkippedImage(
                    record.path,
                    f"box {_box_text(record.box)} lies wholly outside the {width}x{height} image",
                )
            )
        elif policy == "refuse":
            skipped.append(
                SkippedImage(
                    record.path,
                    f"box {_box_text(record.box)} reaches outside the {width}x{height} image "
                    "(--boxes clip would clip it)",
                )
            )
        else:
            kept.append(replace(record, box=inside))
            clipped += 1
    if clipped or skipped:
        log.info("boxes: %d clipped to their image, %d images skipped", clipped, len(skipped))
    return FittedBoxes(kept, skipped, clipped)


def write_skipped(path: Path, skipped: Sequence[SkippedImage]) -> Path:
    """Write one ``<path>\\t<reason>`` line per skipped image (the file is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{item.path}\t{item.reason}\n" for item in skipped)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


__all__ = ["BOX_POLICIES", "FittedBoxes", "SkippedImage", "fit_boxes", "write_skipped"]
