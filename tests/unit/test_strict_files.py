"""Strict annotation and shots files: unknown keys are one line with a "did you mean"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from explgraph.core.errors import AnnotationError
from miner.data.annotations import FORMAT, read_annotations
from queries.aog.shots import SHOTS_FORMAT, read_shots


def _annotations(folder: Path, images: list[dict[str, Any]], **top: Any) -> Path:
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    path = folder / "ann.json"
    path.write_text(json.dumps({"format": FORMAT, "images": images, **top}, indent=1))
    return path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"file": "a.png", "lable": "x"},
            r"line \d+: images\[0\]\.lable is not a known key; "
            r'did you mean "label"\?',
        ),
        ({"file": "a.png", "bbox": [0, 0, 4, 4]}, r'images\[0\]\.bbox .* did you mean "box"\?'),
        (
            {"file": "a.png", "parts": {"head": {"x": 1, "y": 2, "visble": True}}},
            r'images\[0\]\.parts\.head\.visble .* did you mean "visible"\?',
        ),
        ({"file": "a.png", "zzz": 1}, r"images\[0\]\.zzz is not a known key \(known: file, "),
    ],
)
def test_unknown_entry_keys_are_named_with_a_suggestion(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnnotationError, match=r"ann\.json: (line \d+: )?" + message) as caught:
        read_annotations(_annotations(tmp_path, [entry]))
    assert "\n" not in str(caught.value)


def test_unknown_top_level_key_comes_before_the_missing_one(tmp_path: Path) -> None:
    path = _annotations(tmp_path, [])
    path.write_text(json.dumps({"format": FORMAT, "image": [{"file": "a.png"}]}))
    with pytest.raises(AnnotationError, match=r'"image" is not a known key; did you mean "images"'):
        read_annotations(path)


def test_numbers_are_not_coerced_from_strings(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"images\[0\]\.box must be a finite number"):
        read_annotations(_annotations(tmp_path, [{"file": "a.png", "box": [0, 0, "4", 4]}]))


@pytest.mark.parametrize("file", ["../../../etc/passwd", "/etc/passwd", "sub/../../a.png"])
def test_paths_outside_the_image_root_are_refused(tmp_path: Path, file: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = _annotations(folder, [{"file": file}])
    with pytest.raises(
        AnnotationError, match=r"points outside the image root .*--allow-outside-root"
    ):
        read_annotations(path)


def test_allow_outside_root_lets_a_sibling_folder_through(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    path = _annotations(folder, [{"file": "../outside.png"}])
    loaded = read_annotations(path, allow_outside_root=True)
    assert loaded.records[0].path.resolve() == (tmp_path / "outside.png").resolve()


def _shots(folder: Path, shot: dict[str, Any], **top: Any) -> Path:
    Image.new("RGB", (80, 60)).save(folder / "im0.png")
    path = folder / "shots.json"
    path.write_text(json.dumps({"format": SHOTS_FORMAT, "part": "head", "shots": [shot], **top}))
    return path


def test_shots_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = _shots(tmp_path, {"file": "im0.png", "x": 1, "y": 2, "tempalte": 1})
    with pytest.raises(
        AnnotationError, match=r'shots\.json: shots\[0\]\.tempalte .* did you mean "template"'
    ):
        read_shots(path)


def test_shots_unknown_top_level_key(tmp_path: Path) -> None:
    path = _shots(tmp_path, {"file": "im0.png", "x": 1, "y": 2}, prat="x")
    with pytest.raises(AnnotationError, match=r'"prat" is not a known key; did you mean "part"'):
        read_shots(path)


def test_shots_still_read_when_strict(tmp_path: Path) -> None:
    shots = read_shots(_shots(tmp_path, {"file": "im0.png", "x": 1, "y": 2, "box": [0, 0, 9, 9]}))
    assert shots.shots[0].record.box == (0.0, 0.0, 9.0, 9.0)
    assert (shots.shots[0].x, shots.shots[0].template) == (1.0, 0)
