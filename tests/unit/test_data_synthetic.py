"""The synthetic parts dataset: determinism, annotations that match the drawing, pose spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explgraph.core.errors import InputError
from miner.data.folder import load_dataset
from miner.data.images import box_too_small, to_crop_coords
from miner.data.synthetic import (
    CATEGORIES,
    CATEGORY_PARTS,
    ROLES,
    iter_samples,
    render_sample,
    split_of,
    write_synthetic,
)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.*"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = _files(write_synthetic(tmp_path / "a", n=8, size=64, seed=5).root)
    again = _files(write_synthetic(tmp_path / "b", n=8, size=64, seed=5).root)
    other = _files(write_synthetic(tmp_path / "c", n=8, size=64, seed=6).root)
    assert len(first) == 9  # 8 images and annotations.json
    assert first == again
    assert first.keys() == other.keys()
    pngs = [name for name in first if name.endswith(".png")]
    assert all(first[name] != other[name] for name in pngs)
    assert first["annotations.json"] != other["annotations.json"]


def test_sample_i_does_not_depend_on_n(tmp_path: Path) -> None:
    few = _files(write_synthetic(tmp_path / "few", n=3, size=64, seed=2).root)
    many = _files(write_synthetic(tmp_path / "many", n=6, size=64, seed=2).root)
    for name, data in few.items():
        if name.endswith(".png"):
            assert many[name] == data
    streamed = list(iter_samples(6, size=64, seed=2))
    assert np.array_equal(streamed[5].image, render_sample(5, size=64, seed=2).image)


def test_categories_take_turns_and_carry_their_parts() -> None:
    assert len(CATEGORIES) >= 4
    for index, sample in enumerate(iter_samples(8, size=64, seed=0)):
        assert sample.label == CATEGORIES[index % len(CATEGORIES)]
        assert set(sample.parts) == set(CATEGORY_PARTS[sample.label])
        assert sample.image.shape == (64, 64, 3)
        assert sample.image.dtype == np.uint8
    shared = set.intersection(*(set(parts) for parts in CATEGORY_PARTS.values()))
    assert {"head", "body", "tail"} <= shared


def test_keypoints_sit_on_their_drawn_part_inside_the_box() -> None:
    for sample in iter_samples(24, size=128, seed=11):
        x0, y0, x1, y1 = sample.box
        ys, xs = np.nonzero(sample.mask)
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        for name, kp in sample.parts.items():
            assert x0 <= kp.x <= x1 and y0 <= kp.y <= y1, (sample.index, name)
            col, row = int(kp.x), int(kp.y)
            assert sample.mask[row, col], (sample.index, name)
            assert ROLES[sample.part_map[row, col] - 1] == name, (sample.index, name)


def test_clean_render_same_object_and_head_differs_from_background() -> None:
    for index in range(8):
        busy = render_sample(index, size=96, seed=4)
        clean = render_sample(index, size=96, seed=4, clean=True)
        assert clean.box == busy.box
        assert clean.parts == busy.parts
        background = clean.image[0, 0].astype(int)  # the object never touches the border
        padded = np.pad(clean.mask, 2)
        near_object = np.zeros_like(clean.mask)
        for dy in range(5):
            for dx in range(5):
                near_object |= padded[dy : dy + 96, dx : dx + 96]
        # Off the object and its anti-aliased rim (2 px at sharp fin tips): plain background.
        assert (clean.image[~near_object] == clean.image[0, 0]).all()
        head = clean.parts["head"]
        pixel = clean.image[int(head.y), int(head.x)].astype(int)
        assert np.abs(pixel - background).max() > 20
        assert not np.array_equal(clean.image, busy.image)


def test_boxes_are_big_enough_at_128_px() -> None:
    sides = [
        min(s.box[2] - s.box[0], s.box[3] - s.box[1]) for s in iter_samples(48, size=128, seed=9)
    ]
    assert not any(box_too_small(s.box) for s in iter_samples(48, size=128, seed=9))
    assert min(sides) >= 50
    assert np.mean(sides) > 0.5 * 128  # objects fill a good part of the frame


def test_parts_move_a_lot_within_the_crop() -> None:
    """A mean-position prior must be easy to beat: heads spread widely over the box crop."""
    samples = list(iter_samples(64, size=64, seed=1))
    assert {s.mirrored for s in samples} == {False, True}
    assert max(abs(s.angle) for s in samples) > 25
    for category in CATEGORIES:
        heads = np.array(
            [
                to_crop_coords(np.array([s.parts["head"].x, s.parts["head"].y]), s.box, 1)
                for s in samples
                if s.label == category
            ]
        )
        spread = np.linalg.norm(heads - heads.mean(axis=0), axis=1).mean()
        assert spread > 0.15, (category, spread)


def test_split_is_exact_per_category_and_validated() -> None:
    splits = [split_of(i, 0.25) for i in range(400)]
    assert splits.count("test") == 100
    for c in range(len(CATEGORIES)):
        assert splits[c::4].count("test") == 25
    assert all(split_of(i, 0.0) == "train" for i in range(40))
    with pytest.raises(InputError, match="test fraction"):
        split_of(0, 1.0)


def test_written_dataset_reads_back_identically(tmp_path: Path) -> None:
    written = write_synthetic(tmp_path / "syn", n=8, size=64, seed=3, test_fraction=0.5)
    loaded = load_dataset(tmp_path / "syn")
    assert loaded.categories == written.categories == CATEGORIES
    assert [r.path.resolve() for r in sorted(loaded.records, key=lambda r: r.name)] == [
        r.path.resolve() for r in sorted(written.records, key=lambda r: r.name)
    ]
    by_name = {r.name: r for r in loaded.records}
    for rec in written.records:
        got = by_name[rec.name]
        assert (got.box, dict(got.parts), got.label, got.split) == (
            rec.box,
            dict(rec.parts),
            rec.label,
            rec.split,
        )
    assert {r.split for r in loaded.records} == {"train", "test"}


def test_bad_arguments_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="too small"):
        render_sample(0, size=8)
    with pytest.raises(InputError, match="negative"):
        render_sample(-1)
    with pytest.raises(InputError, match="--n 1 or more"):
        write_synthetic(tmp_path, n=0)
