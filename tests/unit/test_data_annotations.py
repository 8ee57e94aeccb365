"""The JSON annotation format: round trip and errors that point at the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from explgraph.core.errors import AnnotationError
from miner.data.annotations import FORMAT, read_annotations, write_annotations
from miner.data.records import Dataset, ImageRecord, Keypoint


def _images(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(path)
        paths.append(path)
    return paths


def _write(path: Path, images: list[dict[str, Any]], **top: Any) -> Path:
    doc = {"format": FORMAT, "categories": ["bird", "fish"], "images": images, **top}
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    a, b, c = _images(tmp_path, "x/a.png", "b.png", "y/z/c.png")
    dataset = Dataset(
        name=tmp_path.name,
        root=tmp_path,
        records=(
            ImageRecord(
                a,
                (1.5, 2.0, 7.25, 8.0),
                {"head": Keypoint(3.0, 4.5), "tail": Keypoint(0.0, 0.0, False)},
                "bird",
                "train",
            ),
            ImageRecord(b, None, {}, "fish", "test"),
            ImageRecord(c),
        ),
        categories=("bird", "fish"),
    )
    path = write_annotations(dataset, tmp_path / "annotations.json", meta={"seed": 3})
    assert json.loads(path.read_text())["images"][0]["file"] == "x/a.png"
    loaded = read_annotations(path)
    assert loaded == dataset
    again = write_annotations(loaded, tmp_path / "again.json", meta={"seed": 3})
    assert again.read_text() == path.read_text()


def test_image_root_overrides_the_file_folder(tmp_path: Path) -> None:
    _images(tmp_path / "pics", "a.png")
    path = _write(tmp_path / "ann.json", [{"file": "a.png", "label": "bird"}])
    loaded = read_annotations(path, image_root=tmp_path / "pics")
    assert loaded.records[0].path == tmp_path / "pics" / "a.png"


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "explgraph-annotations/1",\n  "images": [,]\n}\n')
    with pytest.raises(AnnotationError, match=r"broken\.json: line 3, column \d+: invalid JSON"):
        read_annotations(path)


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({"file": "a.png", "box": [1, 2, 3]}, r"images\[1\]\.box must be a list"),
        ({"file": "a.png", "box": [5, 2, 3, 9]}, r"images\[1\]\.box .* inverted"),
        ({"file": "a.png", "box": [1, 2, True, 9]}, r"images\[1\]\.box must be a finite number"),
        ({"file": 7}, r"images\[1\]\.file is missing"),
        ({"label": "bird"}, r"images\[1\]\.file is missing"),
        ({"file": "a.png", "split": "val"}, r"images\[1\]\.split 'val' must be"),
        ({"file": "a.png", "label": "cat"}, r"images\[1\]\.label 'cat' is not in categories"),
        ({"file": "a.png", "parts": {"head": {"x": 1}}}, r"images\[1\]\.parts\.head must be"),
        (
            {"file": "a.png", "parts": {"head": {"x": 1, "y": "2"}}},
            r"images\[1\]\.parts\.head\.y must be a finite number",
        ),
        (
            {"file": "a.png", "parts": {"head": {"x": 1, "y": 2, "visible": 1}}},
            r"images\[1\]\.parts\.head\.visible must be true or false",
        ),
        ("a.png", r"images\[1\] must be an object"),
    ],
)
def test_bad_fields_name_entry_and_field(tmp_path: Path, entry: Any, where: str) -> None:
    _images(tmp_path, "ok.png", "a.png")
    path = _write(tmp_path / "ann.json", [{"file": "ok.png"}, entry])
    with pytest.raises(AnnotationError, match=r"ann\.json: (line \d+: )?" + where):
        read_annotations(path)


def test_missing_image_is_named_with_its_line(tmp_path: Path) -> None:
    _images(tmp_path, "ok.png")
    path = tmp_path / "ann.json"
    path.write_text(
        f'{{"format": "{FORMAT}",\n "images": [\n  {{"file": "ok.png"}},\n'
        '  {"label": "x",\n   "file": "gone.png"}\n ]\n}\n'
    )
    with pytest.raises(
        AnnotationError, match=r"ann\.json: line 5: images\[1\]\.file .*gone\.png does not exist"
    ):
        read_annotations(path)


def test_bad_field_error_carries_the_entry_line(tmp_path: Path) -> None:
    _images(tmp_path, "a.png", "b.png")
    path = _write(tmp_path / "ann.json", [{"file": "a.png"}, {"file": "b.png", "box": "wide"}])
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "b.png" in text)
    with pytest.raises(AnnotationError, match=rf"ann\.json: line {line}: images\[1\]\.box must"):
        read_annotations(path)


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    _images(tmp_path, "ok.png")
    path = _write(tmp_path / "ann.json", [{"file": "ok.png"}, {"file": "./ok.png"}])
    with pytest.raises(
        AnnotationError, match=r"images\[1\]\.file names the same image as images\[0\]"
    ):
        read_annotations(path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "top level must be an object"),
        ({"images": []}, '"format" is None'),
        ({"format": "other/2", "images": []}, "\"format\" is 'other/2'"),
        ({"format": FORMAT}, '"images" must be a list'),
        ({"format": FORMAT, "categories": "bird", "images": []}, '"categories" must be a list'),
    ],
)
def test_bad_top_level(tmp_path: Path, doc: Any, message: str) -> None:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=message):
        read_annotations(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="cannot read annotation file"):
        read_annotations(tmp_path / "nope.json")


def test_categories_default_to_the_labels(tmp_path: Path) -> None:
    _images(tmp_path, "a.png", "b.png")
    path = tmp_path / "ann.json"
    images = [{"file": "b.png", "label": "zebra"}, {"file": "a.png", "label": "ant"}]
    path.write_text(json.dumps({"format": FORMAT, "images": images}))
    assert read_annotations(path).categories == ("ant", "zebra")
