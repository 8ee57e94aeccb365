"""The explgraph annotation file: object boxes, part keypoints, labels and splits, as JSON.

Format (``explgraph-annotations/1``)::

    {
      "format": "explgraph-annotations/1",
      "categories": ["bird", "fish"],                 optional; default: the labels used
      "meta": {...},                                  optional, free-form, ignored on reading
      "images": [
        {
          "file": "rel/path.png",                     required; under the image root, relative to it
          "label": "bird",                            optional; must be one of "categories"
          "split": "train",                           optional; "train" or "test"
          "box": [x0, y0, x1, y1],                    optional; pixels, x1 > x0, y1 > y0
          "parts": {                                  optional
            "head": {"x": 12.5, "y": 40.0, "visible": true}   "visible" defaults to true
          }
        }
      ]
    }

Coordinates are pixels of the original image file, x to the right, y down, origin at the top-left
corner of the top-left pixel (see :mod:`miner.data.records`). The image root is the folder that
holds the annotation file unless another is given; a path that leaves it (``..``, absolute) is
refused unless ``allow_outside_root``. Keys not listed above are errors (with a "did you mean"
suggestion), so a misspelt ``"lable"`` never loads as "no label". Every problem raises
:class:`~explgraph.core.errors.AnnotationError` naming the file, the line (JSON syntax) or the entry
index and field, and what to change.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from explgraph.core.errors import AnnotationError
from miner.data.records import Box, Dataset, ImageRecord, Keypoint
from miner.data.strict import StrictModel, finite_number, image_file, optional_box, validate

FORMAT = "explgraph-annotations/1"
SPLITS = ("train", "test")


class PartEntry(StrictModel):
    """One keypoint: ``{"x": .., "y": .., "visible": ..}``."""

    x: Annotated[float, BeforeValidator(finite_number)]
    y: Annotated[float, BeforeValidator(finite_number)]
    visible: bool = True

    @model_validator(mode="before")
    @classmethod
    def _has_x_and_y(cls, value: Any) -> Any:
        if not isinstance(value, dict) or "x" not in value or "y" not in value:
            raise ValueError('must be an object {"x": .., "y": .., "visible": ..}')
        return value

    @field_validator("visible", mode="before")
    @classmethod
    def _boolean(cls, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value


def _optional_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")
    return value


def _split(value: Any) -> str | None:
    value = _optional_text(value)
    if value is not None and value not in SPLITS:
        raise ValueError(f'{value!r} must be "train" or "test"')
    return value


def _parts(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise ValueError('must be an object {"name": {"x": .., "y": ..}}')
    return value


class ImageEntry(StrictModel):
    """One entry of ``"images"``."""

    file: Annotated[str, BeforeValidator(image_file)]
    label: Annotated[str | None, BeforeValidator(_optional_text)] = None
    split: Annotated[str | None, BeforeValidator(_split)] = None
    box: Annotated[Box | None, BeforeValidator(optional_box)] = None
    parts: Annotated[dict[str, PartEntry] | None, BeforeValidator(_parts)] = None

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError('must be an object with at least "file"; fix that entry')
        return value


def _format(value: Any) -> str:
    if value != FORMAT:
        raise ValueError(f'is {value!r}; expected "{FORMAT}" (add or fix that key)')
    return str(value)


def _categories(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError("must be a list of strings")
    return value


def _images(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError("must be a list of image entries")
    return value


class AnnotationDocument(StrictModel):
    """The whole annotation file (``explgraph-annotations/1``)."""

    # format and images are required; a default of None sends a missing key through the
    # validator, whose message says what the key must hold.
    format: Annotated[str, BeforeValidator(_format)] = Field(None, validate_default=True)
    categories: Annotated[list[str], BeforeValidator(_categories)] = Field(default_factory=list)
    meta: dict[str, Any] | None = None
    images: Annotated[list[ImageEntry], BeforeValidator(_images)] = Field(
        None, validate_default=True
    )


def _line_of(text: str, entry: Any) -> str:
    """``"line N: "`` for the entry's ``"file"`` key in the source text, or ``""`` if not found.

    Only called on errors: ``json`` keeps no positions, so the entry is found again by its file.
    """
    file = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(file, str):
        return ""
    for literal in {json.dumps(file), json.dumps(file, ensure_ascii=False)}:
        found = re.search(r'"file"\s*:\s*' + re.escape(literal), text)
        if found:
            return f"line {text.count(chr(10), 0, found.start()) + 1}: "
    return ""


def _confined(root: Path, file: str, where: str, allow_outside_root: bool) -> Path:
    """``root / file``, refused when it leaves ``root`` (``..``, an absolute path, or a symbolic
    link on the way that points outside: the check is on the resolved path, because that is the
    file that is read and stored)."""
    image = root / file
    if allow_outside_root:
        return image
    base = os.path.realpath(root)
    if not is_inside(base, image):
        raise AnnotationError(
            f"{where}.file {file!r} points outside the image root {base}; move the image under "
            "it or pass --allow-outside-root"
        )
    return image


def is_inside(base: str, path: Path | str) -> bool:
    """Whether ``path``, symbolic links resolved, lies under the resolved folder ``base``."""
    target = os.path.realpath(path)
    return os.path.commonpath([base, target]) == base


@dataclass
class _Source:
    """An annotation file as read: its path, its text and the raw ``images`` entries (for
    naming the line of an entry in an error)."""

    path: Path
    text: str
    entries: list[Any]

    def where(self, index: int) -> str:
        """``<file>: line N: images[index]`` for error messages."""
        return f"{self.path}: {_line_of(self.text, self.entries[index])}images[{index}]"


def _parse(path: Path) -> tuple[_Source, AnnotationDocument]:
    """Read and validate the file (syntax errors with line and column, fields by entry)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationError(
            f"cannot read annotation file {path}: {error}; check the path"
        ) from error
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"{path}: line {error.lineno}, column {error.colno}: invalid JSON ({error.msg}); "
            "fix the syntax there"
        ) from error
    if not isinstance(doc, dict):
        raise AnnotationError(f'{path}: the top level must be an object with "format" and "images"')
    raw = doc.get("images")
    source = _Source(path, text, raw if isinstance(raw, list) else [])

    def line(loc: Sequence[int | str]) -> str:
        if len(loc) >= 2 and loc[0] == "images" and isinstance(loc[1], int):
            return _line_of(text, source.entries[loc[1]]) if loc[1] < len(source.entries) else ""
        return ""

    try:
        return source, validate(AnnotationDocument, doc, prefix=line)
    except ValueError as error:
        raise AnnotationError(f"{path}: {error}") from None


def _records(
    source: _Source, document: AnnotationDocument, root: Path, allow_outside_root: bool
) -> list[ImageRecord]:
    """One record per entry, its label checked against the declared categories."""
    categories = tuple(document.categories)
    records: list[ImageRecord] = []
    for i, entry in enumerate(document.images):
        where = source.where(i)
        if entry.label is not None and categories and entry.label not in categories:
            raise AnnotationError(
                f"{where}.label {entry.label!r} is not in categories {list(categories)}: "
                "add it there or fix the label"
            )
        parts = {
            name: Keypoint(point.x, point.y, point.visible)
            for name, point in (entry.parts or {}).items()
        }
        records.append(
            ImageRecord(
                path=_confined(root, entry.file, where, allow_outside_root),
                box=entry.box,
                parts=parts,
                label=entry.label,
                split=entry.split,
            )
        )
    return records


def _check_files(source: _Source, records: list[ImageRecord]) -> None:
    """Refuse two entries of the same image, and images that are not there."""
    seen: dict[Path, int] = {}
    for i, rec in enumerate(records):
        if rec.path in seen:
            raise AnnotationError(
                f"{source.where(i)}.file names the same image as "
                f"images[{seen[rec.path]}]; merge the two entries"
            )
        seen[rec.path] = i
    missing = [i for i, rec in enumerate(records) if not rec.path.is_file()]
    if missing:
        i = missing[0]
        raise AnnotationError(
            f"{source.where(i)}.file {records[i].path} does not "
            f"exist ({len(missing)} missing in all); fix the paths or give the right image root"
        )


def read_annotations(
    path: Path | str, image_root: Path | str | None = None, *, allow_outside_root: bool = False
) -> Dataset:
    """Read an annotation file into a :class:`Dataset` (images relative to ``image_root``).

    ``image_root`` defaults to the annotation file's folder. Every named image must exist and,
    unless ``allow_outside_root``, lie under the image root.

    Raises:
        AnnotationError: unreadable file, invalid JSON (with line and column), unknown keys
            (with a "did you mean"), wrong types (with the entry index and field), images
            outside the root, or images that are not there.
    """
    path = Path(path)
    source, document = _parse(path)
    root = Path(image_root) if image_root is not None else path.parent
    records = _records(source, document, root, allow_outside_root)
    _check_files(source, records)
    categories = tuple(document.categories)
    if not categories:
        categories = tuple(sorted({rec.label for rec in records if rec.label is not None}))
    return Dataset(
        name=path.parent.name or path.stem, root=root, records=tuple(records), categories=categories
    )


def _entry(record: ImageRecord, base: Path) -> dict[str, Any]:
    try:
        file = record.path.relative_to(base).as_posix()
    except ValueError:  # not under the annotation folder: keep a path that still resolves
        file = Path(os.path.abspath(record.path)).as_posix()
    entry: dict[str, Any] = {"file": file}
    if record.label is not None:
        entry["label"] = record.label
    if record.split is not None:
        entry["split"] = record.split
    if record.box is not None:
        entry["box"] = [float(v) for v in record.box]
    if record.parts:
        entry["parts"] = {
            name: {"x": float(kp.x), "y": float(kp.y), "visible": bool(kp.visible)}
            for name, kp in record.parts.items()
        }
    return entry


def write_annotations(
    dataset: Dataset, path: Path | str, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write ``dataset`` as an annotation file; image paths are stored relative to its folder.

    The output is byte-for-byte determined by the dataset (and ``meta``). Returns ``path``.
    """
    path = Path(path)
    categories = list(dataset.categories) or sorted(
        {rec.label for rec in dataset.records if rec.label is not None}
    )
    doc: dict[str, Any] = {"format": FORMAT, "categories": categories}
    if meta:
        doc["meta"] = dict(meta)
    doc["images"] = [_entry(rec, path.parent) for rec in dataset.records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


__all__ = ["FORMAT", "SPLITS", "is_inside", "read_annotations", "write_annotations"]
