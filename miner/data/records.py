"""The records every data source produces and every downstream stage consumes.

Coordinates are image pixels of the original file, x to the right, y down, origin at the
top-left corner of the top-left pixel. Boxes are ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Keypoint:
    """A named part location in an image (``visible=False``: annotated as hidden)."""

    x: float
    y: float
    visible: bool = True


@dataclass(frozen=True)
class ImageRecord:
    """One image with what is known about it: object box, part keypoints, label, split."""

    path: Path
    box: Box | None = None
    parts: Mapping[str, Keypoint] = field(default_factory=dict)
    label: str | None = None
    split: str | None = None

    @property
    def name(self) -> str:
        """The file name, for messages and tables."""
        return self.path.name

    def visible_parts(self) -> dict[str, Keypoint]:
        """The keypoints annotated as visible."""
        return {name: kp for name, kp in self.parts.items() if kp.visible}


@dataclass(frozen=True)
class Dataset:
    """An ordered collection of image records from one source."""

    name: str
    root: Path
    records: tuple[ImageRecord, ...]
    categories: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split name that occurs in the records, sorted (none for a plain image folder)."""
        return tuple(sorted({rec.split for rec in self.records if rec.split}))

    @property
    def part_names(self) -> tuple[str, ...]:
        """Every part name that occurs in the records, sorted."""
        return tuple(sorted({name for rec in self.records for name in rec.parts}))

    def select(self, *, split: str | None = None, label: str | None = None) -> Dataset:
        """The records of one split and/or one label (``None``: no filter)."""
        kept = tuple(
            rec
            for rec in self.records
            if (split is None or rec.split == split) and (label is None or rec.label == label)
        )
        return replace(self, records=kept)

    def head(self, n: int) -> Dataset:
        """The first ``n`` records."""
        return replace(self, records=self.records[:n])


def image_content_id(path: Path) -> str:
    """A stable id for an image: the first 16 hex digits of the SHA-1 of its bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


__all__ = ["Box", "Dataset", "ImageRecord", "Keypoint", "image_content_id"]
