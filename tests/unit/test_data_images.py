"""Image reading, object crops and the crop coordinate map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explgraph.core.errors import ImageError, InputError
from miner.data.images import (
    box_too_small,
    crop_to_box,
    from_crop_coords,
    full_box,
    load_image,
    to_crop_coords,
)


def _marker_image(width: int, height: int, x: int, y: int) -> Image.Image:
    """Grey image with a 4x4 red square whose centre is (x + 2, y + 2)."""
    pixels = np.full((height, width, 3), 90, dtype=np.uint8)
    pixels[y : y + 4, x : x + 4] = (255, 0, 0)
    return Image.fromarray(pixels)


def _red_centre(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image).astype(int)
    weight = np.clip(pixels[..., 0] - pixels[..., 1] - 90, 0, None).astype(float)
    ys, xs = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    return np.array([(weight * (xs + 0.5)).sum(), (weight * (ys + 0.5)).sum()]) / weight.sum()


def test_load_image_converts_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (7, 5), 128).save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (7, 5)
    assert np.asarray(image)[0, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize("content", [b"not an image at all", None, "truncated"])
def test_load_image_errors_name_file_and_fix(tmp_path: Path, content: bytes | str | None) -> None:
    path = tmp_path / "bad.png"
    if content == "truncated":
        Image.new("RGB", (64, 64), (10, 200, 30)).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(
        ImageError, match=r"cannot read image .*bad\.png: .*remove it or replace it"
    ):
        load_image(path)


@pytest.mark.parametrize("mirror", [False, True])
def test_crop_puts_a_marker_where_to_crop_coords_says(mirror: bool) -> None:
    image = _marker_image(200, 100, 100, 40)  # marker centre (102, 42)
    box = (50.0, 20.0, 150.0, 80.0)
    crop = crop_to_box(image, box, 64, mirror=mirror)
    assert crop.size == (64, 64)
    expected = to_crop_coords(np.array([102.0, 42.0]), box, 64, mirror=mirror)
    assert np.allclose(_red_centre(crop), expected, atol=0.6)


def test_crop_past_the_border_pads_and_keeps_the_map() -> None:
    image = _marker_image(60, 40, 4, 30)  # marker centre (6, 32)
    box = (-20.0, 10.0, 40.0, 50.0)  # reaches past the left and bottom edges
    crop = crop_to_box(image, box, 48)
    expected = to_crop_coords(np.array([6.0, 32.0]), box, 48)
    assert np.allclose(_red_centre(crop), expected, atol=0.6)
    assert np.asarray(crop)[2, 2].tolist() == [0, 0, 0]  # padding, left of the image


def test_crop_without_box_takes_the_whole_image() -> None:
    image = _marker_image(80, 40, 60, 10)
    crop = crop_to_box(image, None, 32)
    expected = to_crop_coords(np.array([62.0, 12.0]), full_box(image), 32)
    assert np.allclose(_red_centre(crop), expected, atol=0.6)


def test_crop_coords_corners_and_round_trip() -> None:
    box = (10.0, 20.0, 110.0, 70.0)
    corners = np.array([[10.0, 20.0], [110.0, 70.0]])
    assert np.allclose(to_crop_coords(corners, box, 224), [[0, 0], [224, 224]])
    assert np.allclose(to_crop_coords(corners, box, 224, mirror=True), [[224, 0], [0, 224]])
    rng = np.random.default_rng(3)
    points = rng.uniform(-50, 300, size=(5, 7, 2))
    for mirror in (False, True):
        there = to_crop_coords(points, box, 96, mirror=mirror)
        assert there.shape == points.shape
        assert np.allclose(from_crop_coords(there, box, 96, mirror=mirror), points)


def test_from_crop_coords_leaves_its_input_alone() -> None:
    points = np.array([[1.0, 2.0]])
    from_crop_coords(points, (0.0, 0.0, 10.0, 10.0), 10, mirror=True)
    assert points.tolist() == [[1.0, 2.0]]


def test_inverted_box_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty or inverted"):
        to_crop_coords(np.zeros(2), (10.0, 0.0, 5.0, 8.0), 32)


def test_box_too_small() -> None:
    assert box_too_small((0.0, 0.0, 49.5, 200.0))
    assert box_too_small((0.0, 0.0, 200.0, 30.0))
    assert not box_too_small((0.0, 0.0, 50.0, 50.0))
    assert not box_too_small(None)
    assert box_too_small((0.0, 0.0, 60.0, 60.0), min_side=64)
