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

Keys not listed above are errors with a "did you mean" suggestion (``"tempalte"`` must not
silently start a template per shot). Every problem raises
:class:`~explgraph.core.errors.AnnotationError` on one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from explgraph.core.errors import AnnotationError
from miner.data.records import Box, ImageRecord
from miner.data.strict import StrictModel, finite_number, image_file, optional_box, validate

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


def _template(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError("must be a non-negative integer")
    return value


class ShotEntry(StrictModel):
    """One entry of ``"shots"``."""

    # Required keys default to None so that a missing one reaches its validator's message.
    file: Annotated[str, BeforeValidator(image_file)] = Field(None, validate_default=True)
    x: Annotated[float, BeforeValidator(finite_number)] = Field(None, validate_default=True)
    y: Annotated[float, BeforeValidator(finite_number)] = Field(None, validate_default=True)
    box: Annotated[Box | None, BeforeValidator(optional_box)] = None
    template: Annotated[int | None, BeforeValidator(_template)] = None

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError('must be an object with "file", "x" and "y"')
        return value


def _shots(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of 1-{MAX_SHOTS} shots")
    return value


def _part(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("is missing; name the semantic part")
    return value


class ShotsDocument(StrictModel):
    """The whole shots file (``explgraph-shots/1``); ``format`` is checked before."""

    format: str
    part: Annotated[str, BeforeValidator(_part)] = Field(None, validate_default=True)
    shots: Annotated[list[ShotEntry], BeforeValidator(_shots)] = Field(None, validate_default=True)


def _shot(entry: ShotEntry, index: int, root: Path, path: Path) -> Shot:
    where = f"{path}: shots[{index}]"
    image = Path(entry.file) if Path(entry.file).is_absolute() else root / entry.file
    if not image.is_file():
        raise AnnotationError(f"{where}.file {image} does not exist; fix the path")
    box = entry.box
    if box is not None:
        x0, y0, x1, y1 = box
        if not (x0 <= entry.x <= x1 and y0 <= entry.y <= y1):
            raise AnnotationError(
                f"{where}: the part centre ({entry.x}, {entry.y}) lies outside the box {list(box)}"
            )
    template = index if entry.template is None else entry.template
    return Shot(record=ImageRecord(path=image, box=box), x=entry.x, y=entry.y, template=template)


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
        try:
            document = validate(ShotsDocument, doc)
        except ValueError as error:
            raise AnnotationError(f"{path}: {error}") from None
        if part is not None and part != document.part:
            raise AnnotationError(
                f"{path} annotates part {document.part!r}, not {part!r}; pick one"
            )
        shot_list = [_shot(entry, i, path.parent, path) for i, entry in enumerate(document.shots)]
        shot_set = ShotSet(part=document.part, shots=tuple(shot_list), source=str(path))
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
