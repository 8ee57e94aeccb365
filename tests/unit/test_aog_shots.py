"""Shots files: the format, one-line errors for malformed ones, and picking shots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from explgraph.core.errors import AnnotationError
from miner.data.records import ImageRecord, Keypoint
from queries.aog.shots import SHOTS_FORMAT, pick_shots, read_shots, write_shots


def _images(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"im{i}.png"
        Image.new("RGB", (80, 60), (i * 40, 10, 10)).save(path)
        paths.append(path)
    return paths


def _write(folder: Path, doc: Any) -> Path:
    path = folder / "shots.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_reads_shots_with_boxes_and_shared_templates(tmp_path: Path) -> None:
    _images(tmp_path, 3)
    doc = {
        "format": SHOTS_FORMAT,
        "part": "head",
        "shots": [
            {"file": "im0.png", "x": 10, "y": 20},
            {"file": "im1.png", "x": 30, "y": 25.5, "box": [5, 5, 70, 55], "template": 7},
            {"file": "im2.png", "x": 31, "y": 26, "template": 7},
        ],
    }
    shots = read_shots(_write(tmp_path, doc))
    assert shots.part == "head"
    assert [s.template for s in shots.shots] == [0, 1, 1]  # renumbered densely
    assert shots.n_templates == 2
    assert shots.shots[1].record.box == (5.0, 5.0, 70.0, 55.0)
    assert shots.shots[0].record.path == tmp_path / "im0.png"
    again = read_shots(write_shots(shots, tmp_path / "out.json"))
    assert [(s.x, s.y, s.template) for s in again.shots] == [
        (s.x, s.y, s.template) for s in shots.shots
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"format": "other", "part": "head", "shots": []}, '"format" must be'),
        ({"format": SHOTS_FORMAT, "shots": []}, '"part" is missing'),
        ({"format": SHOTS_FORMAT, "part": "head", "shots": []}, "give 1 to 3"),
        (
            {"format": SHOTS_FORMAT, "part": "head", "shots": [{"file": "im0.png", "x": 1}] * 4},
            "must be a finite number",
        ),
        (
            {
                "format": SHOTS_FORMAT,
                "part": "head",
                "shots": [{"file": "im0.png", "x": 1, "y": 2}] * 4,
            },
            "give 1 to 3",
        ),
        (
            {
                "format": SHOTS_FORMAT,
                "part": "head",
                "shots": [{"file": "nope.png", "x": 1, "y": 2}],
            },
            "does not exist",
        ),
        (
            {
                "format": SHOTS_FORMAT,
                "part": "head",
                "shots": [{"file": "im0.png", "x": 1, "y": 2, "box": [10, 10, 50, 50]}],
            },
            "outside the box",
        ),
        (
            {
                "format": SHOTS_FORMAT,
                "part": "head",
                "shots": [{"file": "im0.png", "x": 1, "y": 2, "template": -1}],
            },
            "template must be",
        ),
    ],
)
def test_malformed_shots_raise_one_line(tmp_path: Path, doc: Any, message: str) -> None:
    _images(tmp_path, 1)
    with pytest.raises(AnnotationError, match=message) as caught:
        read_shots(_write(tmp_path, doc))
    assert "\n" not in str(caught.value)


def test_part_name_must_agree(tmp_path: Path) -> None:
    _images(tmp_path, 1)
    doc = {"format": SHOTS_FORMAT, "part": "head", "shots": [{"file": "im0.png", "x": 1, "y": 2}]}
    with pytest.raises(AnnotationError, match="not 'tail'"):
        read_shots(_write(tmp_path, doc), "tail")


def test_annotation_file_gives_the_visible_keypoints(tmp_path: Path) -> None:
    _images(tmp_path, 3)
    doc = {
        "format": "explgraph-annotations/1",
        "images": [
            {"file": "im0.png", "box": [0, 0, 60, 50], "parts": {"head": {"x": 5, "y": 6}}},
            {"file": "im1.png", "parts": {"head": {"x": 5, "y": 6, "visible": False}}},
            {"file": "im2.png", "parts": {"head": {"x": 7, "y": 8}}},
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    shots = read_shots(path, "head")
    assert [s.record.path.name for s in shots.shots] == ["im0.png", "im2.png"]
    assert shots.shots[0].record.box == (0.0, 0.0, 60.0, 50.0)
    with pytest.raises(AnnotationError, match="name the part"):
        read_shots(path)


def test_pick_shots_spreads_over_poses() -> None:
    box = (0.0, 0.0, 100.0, 100.0)
    spots = [(50, 50), (52, 49), (10, 10), (90, 90), (49, 51), (12, 11)]
    records = [
        ImageRecord(Path(f"im{i}.png"), box, {"head": Keypoint(x, y)})
        for i, (x, y) in enumerate(spots)
    ]
    shots = pick_shots(records, "head", 3, size=100)
    picked = {(s.x, s.y) for s in shots.shots}
    assert (90, 90) in picked and ((10, 10) in picked or (12, 11) in picked)
    assert len(picked) == 3
    with pytest.raises(AnnotationError, match="need 7"):
        pick_shots(records, "head", 7, size=100)
