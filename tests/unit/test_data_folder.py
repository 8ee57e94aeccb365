"""Image folders, the CUB-200-2011 reader and the source detection of load_dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from explgraph.core.errors import AnnotationError, InputError
from miner.data.annotations import FORMAT
from miner.data.cub import CUB_NAME, is_cub_root, read_cub
from miner.data.folder import load_dataset, load_image_folder
from miner.data.records import Keypoint


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 6), (1, 2, 3)).save(path)
    return path


def _fake_cub(root: Path) -> Path:
    """Three images of two classes, with boxes, two parts (one hidden) and a split."""
    names = ["001.Gull/g_1.jpg", "001.Gull/g_2.jpg", "002.Wren/w_1.jpg"]
    for name in names:
        _image(root / "images" / name)
    (root / "images.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    (root / "classes.txt").write_text("1 001.Gull\n2 002.Wren\n")
    (root / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    (root / "bounding_boxes.txt").write_text("1 1.0 2.0 5.0 3.0\n2 0 0 10 6\n3 2.5 1.5 4.0 4.0\n")
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (root / "parts").mkdir()
    (root / "parts" / "parts.txt").write_text("1 back\n2 left eye\n")
    (root / "parts" / "part_locs.txt").write_text(
        "1 1 3.0 4.0 1\n1 2 0.0 0.0 0\n2 1 5.0 5.0 1\n2 2 6.0 1.0 1\n3 1 0 0 0\n3 2 4.5 2.5 1\n"
    )
    return root


def test_plain_folder_sorted_with_subfolder_labels(tmp_path: Path) -> None:
    _image(tmp_path / "dogs" / "b.png")
    _image(tmp_path / "cats" / "z.JPG")
    _image(tmp_path / "cats" / "deep" / "a.png")
    _image(tmp_path / "top.png")
    _image(tmp_path / ".hidden" / "x.png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path)
    rel = [r.path.relative_to(tmp_path).as_posix() for r in data.records]
    assert rel == ["cats/deep/a.png", "cats/z.JPG", "dogs/b.png", "top.png"]
    assert [r.label for r in data.records] == ["cats", "cats", "dogs", None]
    assert data.categories == ("cats", "dogs")
    assert load_dataset(tmp_path) == data


def test_folder_without_images_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match=r"no images .* under"):
        load_image_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        load_image_folder(tmp_path / "readme.txt")


def test_annotations_are_merged_into_the_folder(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    _image(tmp_path / "sub" / "b.png")
    doc = {
        "format": FORMAT,
        "categories": ["bird"],
        "images": [
            {
                "file": "sub/b.png",
                "label": "bird",
                "box": [0, 0, 5, 5],
                "parts": {"head": {"x": 1, "y": 2}},
            }
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    data = load_dataset(tmp_path)  # finds annotations.json by itself
    assert [r.name for r in data.records] == ["a.png", "b.png"]
    plain, annotated = data.records
    assert plain.box is None and plain.label is None
    assert annotated.box == (0.0, 0.0, 5.0, 5.0)
    assert annotated.parts == {"head": Keypoint(1.0, 2.0, True)}
    assert annotated.label == "bird"
    assert data.categories == ("bird",)
    elsewhere = tmp_path.parent / f"{tmp_path.name}_ann.json"
    elsewhere.write_text(json.dumps(doc))
    assert load_dataset(tmp_path, annotations=elsewhere).records == data.records
    assert load_dataset(tmp_path / "annotations.json").records == (annotated,)


def test_load_dataset_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(InputError, match="is a file"):
        load_dataset(_image(tmp_path / "one.png"))


def test_cub_reader(tmp_path: Path) -> None:
    root = _fake_cub(tmp_path / "CUB_200_2011")
    assert is_cub_root(root)
    data = read_cub(root)
    assert data.name == CUB_NAME
    assert data.categories == ("Gull", "Wren")
    first, second, third = data.records
    assert second.parts["left_eye"] == Keypoint(6.0, 1.0, True)
    assert first.path == root / "images" / "001.Gull" / "g_1.jpg"
    assert [r.label for r in data.records] == ["Gull", "Gull", "Wren"]
    assert [r.split for r in data.records] == ["train", "test", "train"]
    assert first.box == (1.0, 2.0, 6.0, 5.0)  # x, y, width, height -> x0, y0, x1, y1
    assert third.box == (2.5, 1.5, 6.5, 5.5)
    assert first.parts == {"back": Keypoint(3.0, 4.0, True), "left_eye": Keypoint(0.0, 0.0, False)}
    assert first.visible_parts() == {"back": Keypoint(3.0, 4.0, True)}
    assert third.parts["left_eye"] == Keypoint(4.5, 2.5, True)
    assert load_dataset(root) == data
    assert load_dataset(tmp_path) == data  # the folder that holds CUB_200_2011/


def test_cub_reader_without_optional_files(tmp_path: Path) -> None:
    root = tmp_path / "cub"
    _image(root / "images" / "a" / "x.jpg")
    (root / "images.txt").write_text("7 a/x.jpg\n")
    data = read_cub(root)
    assert len(data) == 1
    assert (data.records[0].box, data.records[0].label, data.records[0].split) == (None, None, None)


def test_cub_malformed_line_is_named(tmp_path: Path) -> None:
    root = _fake_cub(tmp_path / "cub")
    (root / "bounding_boxes.txt").write_text("1 1.0 2.0 5.0 3.0\n2 0 0 10\n")
    with pytest.raises(AnnotationError, match=r"bounding_boxes\.txt: line 2: expected"):
        read_cub(root)
    (root / "bounding_boxes.txt").write_text("1 1.0 2.0 five 3.0\n")
    with pytest.raises(AnnotationError, match=r"bounding_boxes\.txt: row .* does not match"):
        read_cub(root)


def test_not_a_cub_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a CUB-200-2011 folder"):
        read_cub(tmp_path)
