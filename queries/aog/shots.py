"""The few-shot annotations an And-Or graph is built from: 1-3 images with the part's centre.

Two file formats are accepted.

The shots file (``explgraph-shots/1``)::

    {
      "format": "explgraph-shots/1",
      "part": "head",
      "shots": [
        {"file": "img/0001.png", "x": 61.0, "y": 20.5},
        {"file": "img/0007.png", "x": 12.0, "y": 33.0, "box": [0, 4, 90, 80], "template": 1}
      ]
    }

``file`` is relative to the shots file's folder (or absolute); ``x``, ``y`` is the part centre in
original-image pixels (x right, y down); ``box`` is the object box ``[x0, y0, x1, y1]`` (default:
the whole image); ``template`` groups shots that show the same pose into one template (default:
every shot starts its own template, as docs/method.md §8 says). The annotation file
(``explgraph-annotations/1``, see :mod:`miner.data.annotations`) works too: every image whose
keypoint ``part`` is visible is one shot, with its box.

Every problem raises :class:`~explgraph.errors.AnnotationError` on one line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explgraph.errors import AnnotationError
from miner.data.records import ImageRecord

SHOTS_FORMAT = "explgraph-shots/1"
MAX_SHOTS = 3


@dataclass(frozen=True)
class Shot:
    """One annotated image: the object (path and box) and the part centre in image pixels."""

    record: ImageRecord
    x: float
    y: float
    template: int


@dataclass(frozen=True)
class ShotSet:
    """The shots of one semantic part, and where they came from."""

    part: str
    shots: tuple[Shot, ...]
    source: str

    @property
    def n_templates(self) -> int:
        """Number of distinct templates the shots start."""
        return len({shot.template for shot in self.shots})


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnnotationError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _shot(entry: Any, index: int, root: Path, path: Path) -> Shot:
    where = f"{path}: shots[{index}]"
    if not isinstance(entry, dict):
        raise AnnotationError(f'{where} must be an object with "file", "x" and "y"')
    file = entry.get("file")
    if not isinstance(file, str) or not file:
        raise AnnotationError(f"{where}.file is missing: give the image path")
    image = Path(file) if Path(file).is_absolute() else root / file
    if not image.is_file():
        raise AnnotationError(f"{where}.file {image} does not exist; fix the path")
    x = _number(entry.get("x"), f"{where}.x")
    y = _number(entry.get("y"), f"{where}.y")
    box = entry.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise AnnotationError(f"{where}.box must be [x0, y0, x1, y1], not {box!r}")
        x0, y0, x1, y1 = (_number(v, f"{where}.box") for v in box)
        if not (x1 > x0 and y1 > y0):
            raise AnnotationError(
                f"{where}.box {box!r} is empty or inverted: need x1 > x0, y1 > y0"
            )
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            raise AnnotationError(f"{where}: the part centre ({x}, {y}) lies outside the box {box}")
        box = (x0, y0, x1, y1)
    template = entry.get("template", index)
    if isinstance(template, bool) or not isinstance(template, int) or template < 0:
        raise AnnotationError(f"{where}.template must be a non-negative integer")
    record = ImageRecord(path=image, box=box)
    return Shot(record=record, x=x, y=y, template=template)


def _from_annotations(path: Path, part: str | None) -> ShotSet:
    from miner.data.annotations import read_annotations

    if not part:
        raise AnnotationError(f"{path} is an annotation file: name the part to take (--part)")
    dataset = read_annotations(path)
    shots = [
        Shot(record=rec, x=rec.parts[part].x, y=rec.parts[part].y, template=i)
        for i, rec in enumerate(r for r in dataset.records if part in r.visible_parts())
    ]
    return ShotSet(part=part, shots=tuple(shots), source=str(path))


def _renumber(shots: list[Shot]) -> tuple[Shot, ...]:
    """Templates numbered 0.. in order of first appearance, so ids stay dense."""
    order: dict[int, int] = {}
    for shot in shots:
        order.setdefault(shot.template, len(order))
    return tuple(Shot(record=s.record, x=s.x, y=s.y, template=order[s.template]) for s in shots)


def read_shots(path: Path | str, part: str | None = None) -> ShotSet:
    """Read a shots file, or an annotation file's visible keypoints of ``part``.

    Args:
        path: the JSON file.
        part: the part name; required for an annotation file, and must agree with a shots
            file's ``"part"`` when both are given.

    Raises:
        AnnotationError: unreadable or malformed file, no shot, more than 3, a missing image.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AnnotationError(f"cannot read shots file {path}: {error}; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnnotationError(f"{path} is not valid JSON ({error}); fix the syntax") from None
    if isinstance(doc, dict) and doc.get("format") == "explgraph-annotations/1":
        shot_set = _from_annotations(path, part)
    else:
        if not isinstance(doc, dict) or doc.get("format") != SHOTS_FORMAT:
            raise AnnotationError(
                f'{path}: "format" must be "{SHOTS_FORMAT}" (or "explgraph-annotations/1")'
            )
        named = doc.get("part")
        if not isinstance(named, str) or not named:
            raise AnnotationError(f'{path}: "part" is missing; name the semantic part')
        if part is not None and part != named:
            raise AnnotationError(f"{path} annotates part {named!r}, not {part!r}; pick one")
        entries = doc.get("shots")
        if not isinstance(entries, list):
            raise AnnotationError(f'{path}: "shots" must be a list of 1-{MAX_SHOTS} shots')
        shot_list = [_shot(entry, i, path.parent, path) for i, entry in enumerate(entries)]
        shot_set = ShotSet(part=named, shots=tuple(shot_list), source=str(path))
    count = len(shot_set.shots)
    if not 1 <= count <= MAX_SHOTS:
        raise AnnotationError(
            f"{path} gives {count} shots of {shot_set.part!r}; give 1 to {MAX_SHOTS} (one per pose)"
        )
    return ShotSet(shot_set.part, _renumber(list(shot_set.shots)), shot_set.source)


def write_shots(shot_set: ShotSet, path: Path | str) -> Path:
    """Write ``shot_set`` as an ``explgraph-shots/1`` file (image paths absolute)."""
    path = Path(path)
    doc = {
        "format": SHOTS_FORMAT,
        "part": shot_set.part,
        "shots": [
            {
                "file": str(shot.record.path.resolve()),
                "x": shot.x,
                "y": shot.y,
                **({"box": list(shot.record.box)} if shot.record.box is not None else {}),
                "template": shot.template,
            }
            for shot in shot_set.shots
        ],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def pick_shots(records: list[ImageRecord], part: str, n: int = 3, size: int = 224) -> ShotSet:
    """Choose ``n`` training images that show ``part`` in different poses.

    Stands in for a person picking one example per pose: farthest-point sampling of the part's
    position in the object crop, starting from the image whose part is nearest the mean. Only
    the given (training) records are looked at.

    Raises:
        AnnotationError: fewer than ``n`` records show the part.
    """
    import numpy as np

    from miner.data.images import full_box, load_image, to_crop_coords

    shown = [rec for rec in records if part in rec.visible_parts()]
    if len(shown) < n:
        raise AnnotationError(
            f"only {len(shown)} training images show {part!r}; need {n} to pick shots"
        )
    points = np.stack(
        [
            to_crop_coords(
                np.array([rec.parts[part].x, rec.parts[part].y]),
                rec.box if rec.box is not None else full_box(load_image(rec.path)),
                size,
            )
            for rec in shown
        ]
    )
    chosen = [int(np.argmin(((points - points.mean(0)) ** 2).sum(1)))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(1)
    while len(chosen) < n:
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(1))
    shots = tuple(
        Shot(record=shown[i], x=shown[i].parts[part].x, y=shown[i].parts[part].y, template=t)
        for t, i in enumerate(chosen)
    )
    return ShotSet(part=part, shots=shots, source="picked: farthest-point over part positions")


__all__ = [
    "MAX_SHOTS",
    "SHOTS_FORMAT",
    "Shot",
    "ShotSet",
    "pick_shots",
    "read_shots",
    "write_shots",
]
