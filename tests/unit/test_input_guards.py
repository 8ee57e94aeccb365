"""Input guards of issue 12: boxes past the border, bounded padding, 16-bit images, skipped.txt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explgraph.core.errors import InputError
from miner.data.boxes import SkippedImage, fit_boxes, write_skipped
from miner.data.images import crop_to_box, load_image, to_crop_coords
from miner.data.records import ImageRecord


def _image(path: Path, size: tuple[int, int] = (128, 96)) -> Path:
    Image.new("RGB", size, (200, 100, 50)).save(path)
    return path


def test_boxes_inside_are_kept_as_they_are(tmp_path: Path) -> None:
    record = ImageRecord(_image(tmp_path / "a.png"), box=(1.0, 2.0, 100.0, 90.0))
    fitted = fit_boxes([record, ImageRecord(tmp_path / "a.png")])
    assert fitted.records == [record, ImageRecord(tmp_path / "a.png")]
    assert (fitted.skipped, fitted.clipped) == ([], 0)


def test_partly_outside_box_is_clipped_by_default(tmp_path: Path) -> None:
    record = ImageRecord(_image(tmp_path / "a.png"), box=(-10.0, 5.0, 140.0, 200.0))
    fitted = fit_boxes([record])
    assert fitted.records[0].box == (0.0, 5.0, 128.0, 96.0)
    assert fitted.clipped == 1


def test_partly_outside_box_is_skipped_with_refuse(tmp_path: Path) -> None:
    record = ImageRecord(_image(tmp_path / "a.png"), box=(-10.0, 5.0, 140.0, 90.0))
    fitted = fit_boxes([record], "refuse")
    assert fitted.records == []
    assert fitted.skipped[0].path == record.path
    assert "reaches outside the 128x96 image" in fitted.skipped[0].reason


@pytest.mark.parametrize("policy", ["clip", "refuse"])
def test_wholly_outside_box_is_always_skipped(tmp_path: Path, policy: str) -> None:
    record = ImageRecord(_image(tmp_path / "a.png"), box=(200.0, 0.0, 300.0, 50.0))
    fitted = fit_boxes([record], policy)
    assert fitted.records == []
    assert "wholly outside the 128x96 image" in fitted.skipped[0].reason


def test_unknown_box_policy_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--boxes must be one of clip, refuse"):
        fit_boxes([], "pad")


def test_skipped_file_lists_every_image(tmp_path: Path) -> None:
    items = [SkippedImage(tmp_path / f"{i}.png", f"reason {i}") for i in range(5)]
    path = write_skipped(tmp_path / "run" / "skipped.txt", items)
    lines = path.read_text().splitlines()
    assert lines == [f"{tmp_path / f'{i}.png'}\treason {i}" for i in range(5)]


def test_sixteen_bit_grayscale_is_scaled_not_saturated(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as handle:
        assert handle.mode.startswith("I")  # the file really is 16-bit
    loaded = np.asarray(load_image(path))
    assert loaded.shape == (1, 4, 3)
    assert loaded[0, :, 0].tolist() == [0, 64, 128, 255]


def test_padded_crop_keeps_the_map_and_pads_black() -> None:
    image = Image.new("RGB", (60, 40), (0, 0, 0))
    image.paste((255, 0, 0), (4, 30, 8, 34))  # marker centre (6, 32)
    box = (-20.0, 10.0, 40.0, 50.0)
    crop = np.asarray(crop_to_box(image, box, 48)).astype(float)
    red = crop[..., 0] - crop[..., 1]
    ys, xs = np.nonzero(red > 50)
    weights = red[ys, xs]
    centre = np.array([(xs + 0.5) @ weights, (ys + 0.5) @ weights]) / weights.sum()
    assert np.allclose(centre, to_crop_coords(np.array([6.0, 32.0]), box, 48), atol=0.6)
    assert crop[2, 2].tolist() == [0, 0, 0]


def test_huge_box_does_not_allocate_a_box_sized_canvas(tmp_path: Path) -> None:
    # The old crop padded to the box: 20000² RGB = 1.2 GB for a 128 px image. Measured in a
    # fresh process: the growth of peak RSS over the crop must stay far below that.
    path = _image(tmp_path / "small.png", (128, 128))
    code = (
        "import resource, sys\n"
        "from miner.data.images import crop_to_box, load_image\n"
        f"image = load_image({str(path)!r})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "crop = crop_to_box(image, (0.0, 0.0, 20000.0, 20000.0), 224)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "corners = crop.getpixel((0, 0)), crop.getpixel((223, 223))\n"
        "print((after - before) * 1024, crop.size, *corners)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    growth, *rest = done.stdout.split(maxsplit=1)
    assert int(growth) < 100 * 2**20, done.stdout
    assert "(224, 224)" in rest[0]
    assert "(200, 100, 50)" in rest[0] and "(0, 0, 0)" in rest[0]  # image corner, padding
