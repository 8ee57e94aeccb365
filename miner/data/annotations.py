"""The explgraph annotation file: object boxes, part keypoints, labels and splits, as JSON.

Format (``explgraph-annotations/1``)::

    {
      "format": "explgraph-annotations/1",
      "categories": ["bird", "fish"],                 optional; default: the labels used
      "meta": {...},                                  optional, free-form, ignored on reading
      "images": [
        {
          "file": "rel/path.png",                     required; relative to the image root
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
holds the annotation file unless another is given. Every problem raises
:class:`~explgraph.errors.AnnotationError` naming the file, the line (JSON syntax) or the entry
index and field, and what to change.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from explgraph.errors import AnnotationError
from miner.data.records import Box, Dataset, ImageRecord, Keypoint

FORMAT = "explgraph-annotations/1"
SPLITS = ("train", "test")


def _number(value: Any, where: str) -> float:
    # bool is an int subclass in Python, but true/false is never a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnnotationError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _box(value: Any, where: str) -> Box | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise AnnotationError(f"{where} must be a list [x0, y0, x1, y1], not {value!r}")
    x0, y0, x1, y1 = (_number(v, where) for v in value)
    if not (x1 > x0 and y1 > y0):
        raise AnnotationError(f"{where} {value!r} is empty or inverted: need x1 > x0 and y1 > y0")
    return (x0, y0, x1, y1)


def _parts(value: Any, where: str) -> dict[str, Keypoint]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AnnotationError(f'{where} must be an object {{"name": {{"x": .., "y": ..}}}}')
    parts: dict[str, Keypoint] = {}
    for name, point in value.items():
        here = f"{where}.{name}"
        if not isinstance(point, dict) or "x" not in point or "y" not in point:
            raise AnnotationError(f'{here} must be an object {{"x": .., "y": .., "visible": ..}}')
        visible = point.get("visible", True)
        if not isinstance(visible, bool):
            raise AnnotationError(f"{here}.visible must be true or false, not {visible!r}")
        parts[name] = Keypoint(
            _number(point["x"], f"{here}.x"), _number(point["y"], f"{here}.y"), visible
        )
    return parts


def _optional_text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise AnnotationError(f"{where}.{key} must be a string, not {value!r}")
    return value


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


def _record(entry: Any, index: int, root: Path, categories: tuple[str, ...]) -> ImageRecord:
    where = f"images[{index}]"
    if not isinstance(entry, dict):
        raise AnnotationError(f'{where} must be an object with at least "file"; fix that entry')
    file = entry.get("file")
    if not isinstance(file, str) or not file:
        raise AnnotationError(f"{where}.file is missing or not a string: give the image path")
    label = _optional_text(entry, "label", where)
    if label is not None and categories and label not in categories:
        raise AnnotationError(
            f"{where}.label {label!r} is not in categories {list(categories)}: "
            "add it there or fix the label"
        )
    split = _optional_text(entry, "split", where)
    if split is not None and split not in SPLITS:
        raise AnnotationError(f'{where}.split {split!r} must be "train" or "test"')
    return ImageRecord(
        path=root / file,
        box=_box(entry.get("box"), f"{where}.box"),
        parts=_parts(entry.get("parts"), f"{where}.parts"),
        label=label,
        split=split,
    )


def read_annotations(path: Path | str, image_root: Path | str | None = None) -> Dataset:
    """Read an annotation file into a :class:`Dataset` (images relative to ``image_root``).

    ``image_root`` defaults to the annotation file's folder. Every named image must exist.

    Raises:
        AnnotationError: unreadable file, invalid JSON (with line and column), wrong types
            (with the entry index and field), or images that are not there.
    """
    path = Path(path)
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
    if doc.get("format") != FORMAT:
        raise AnnotationError(
            f'{path}: "format" is {doc.get("format")!r}; expected "{FORMAT}" (add or fix that key)'
        )
    raw_categories = doc.get("categories", [])
    if not isinstance(raw_categories, list) or not all(isinstance(c, str) for c in raw_categories):
        raise AnnotationError(f'{path}: "categories" must be a list of strings')
    entries = doc.get("images")
    if not isinstance(entries, list):
        raise AnnotationError(f'{path}: "images" must be a list of image entries')
    root = Path(image_root) if image_root is not None else path.parent
    categories = tuple(raw_categories)
    records: list[ImageRecord] = []
    for i, entry in enumerate(entries):
        try:
            records.append(_record(entry, i, root, categories))
        except AnnotationError as error:
            raise AnnotationError(f"{path}: {_line_of(text, entry)}{error}") from None
    seen: dict[Path, int] = {}
    for i, rec in enumerate(records):
        if rec.path in seen:
            raise AnnotationError(
                f"{path}: {_line_of(text, entries[i])}images[{i}].file names the same image as "
                f"images[{seen[rec.path]}]; merge the two entries"
            )
        seen[rec.path] = i
    missing = [i for i, rec in enumerate(records) if not rec.path.is_file()]
    if missing:
        i = missing[0]
        raise AnnotationError(
            f"{path}: {_line_of(text, entries[i])}images[{i}].file {records[i].path} does not "
            f"exist ({len(missing)} missing in all); fix the paths or give the right image root"
        )
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


__all__ = ["FORMAT", "SPLITS", "read_annotations", "write_annotations"]
