"""The synthetic dataset's looks: ``--style`` leaves the default look's bytes unchanged, and the
second look (``lowpoly``) is deterministic, differs, and keeps the parts and annotation format."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explgraph.cli import main
from explgraph.core.errors import InputError
from miner.data.folder import load_dataset
from miner.data.synthetic import CATEGORIES, CATEGORY_PARTS, ROLES, STYLES, write_synthetic
from miner.data.synthetic.lowpoly import render_sample as render_lowpoly
from miner.data.synthetic.render import render_sample as render_cartoon

# sha256 of annotations.json and every image's pixels, written by commit a769bfa (before looks
# existed) with write_synthetic(n=8, size=64, seed, test_fraction=0.5, difficulty)
PINNED = {
    ("normal", 3): "d089ea5acc307c676e311f02c0bc5eb1fb8705301dd53fca6a2a956a003514a3",
    ("normal", 2026): "ee9d601a3cb1b5fc7cc156aed4ba134933d0d77779fe5be34751cb7c890918d2",
    ("hard", 3): "dcc791702f8e8e1dd1e64b4c081a065bd76683d6eab8b9c300e3e4b873c423e5",
    ("hard", 2026): "d2936d32cb35c0e3ce421bdfa7af7deaf9b2c2954cd85e6bad1e7e1bf4870ad5",
}


def _digest(root: Path) -> str:
    digest = hashlib.sha256((root / "annotations.json").read_bytes())
    for png in sorted(root.rglob("*.png")):
        digest.update(png.relative_to(root).as_posix().encode())
        digest.update(np.asarray(Image.open(png)).tobytes())
    return digest.hexdigest()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.*"))}


@pytest.mark.parametrize(("difficulty", "seed"), sorted(PINNED))
def test_the_default_look_is_byte_identical_to_before_looks_existed(
    tmp_path: Path, difficulty: str, seed: int
) -> None:
    for style in (None, "cartoon"):
        out = tmp_path / str(style)
        extra = {} if style is None else {"style": style}
        write_synthetic(out, 8, size=64, seed=seed, test_fraction=0.5, difficulty=difficulty,
                        **extra)  # fmt: skip
        assert _digest(out) == PINNED[(difficulty, seed)], style


def test_cli_style_default_is_the_cartoon_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for name, extra in (("plain", []), ("cartoon", ["--style", "cartoon"]),
                        ("lowpoly", ["--style", "lowpoly"])):  # fmt: skip
        args = ["explgraph", "--quiet", "dataset", "synth", str(tmp_path / name), "--n", "4",
                "--size", "48", "--seed", "9", *extra]  # fmt: skip
        monkeypatch.setattr(sys, "argv", args)
        with pytest.raises(SystemExit) as done:
            main()
        assert not done.value.code
        outputs[name] = _files(tmp_path / name)
    assert outputs["plain"] == outputs["cartoon"]
    assert outputs["lowpoly"].keys() == outputs["plain"].keys()
    assert "lowpoly look" in capsys.readouterr().out
    meta = json.loads(outputs["lowpoly"]["annotations.json"])["meta"]
    assert meta["style"] == "lowpoly"
    assert "style" not in json.loads(outputs["plain"]["annotations.json"])["meta"]
    monkeypatch.setattr(sys, "argv", ["explgraph", "dataset", "synth", str(tmp_path / "x"),
                                      "--style", "sketchy"])  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 1 and len(err) == 1 and "cartoon, lowpoly" in err[0]


def test_lowpoly_is_deterministic_per_sample_and_unlike_the_cartoon_look(tmp_path: Path) -> None:
    first = _files(write_synthetic(tmp_path / "a", 8, size=64, seed=5, style="lowpoly").root)
    again = _files(write_synthetic(tmp_path / "b", 8, size=64, seed=5, style="lowpoly").root)
    other = _files(write_synthetic(tmp_path / "c", 8, size=64, seed=6, style="lowpoly").root)
    cartoon = _files(write_synthetic(tmp_path / "d", 8, size=64, seed=5).root)
    assert first == again
    pngs = [name for name in first if name.endswith(".png")]
    assert all(first[name] != other[name] for name in pngs)
    assert all(first[name] != cartoon[name] for name in pngs)
    alone = render_lowpoly(5, 64, 5)  # sample i depends on (seed, i) only
    written = np.asarray(Image.open(tmp_path / "a" / alone.label / "000005.png"))
    assert np.array_equal(alone.image, written)
    assert set(STYLES) == {"cartoon", "lowpoly"}
    with pytest.raises(InputError, match="cartoon, lowpoly"):
        write_synthetic(tmp_path / "e", 2, style="sketchy")


@pytest.mark.parametrize("difficulty", ["normal", "hard"])
def test_lowpoly_keeps_categories_parts_splits_and_keypoints_on_their_part(
    tmp_path: Path, difficulty: str
) -> None:
    written = write_synthetic(tmp_path / "syn", 24, size=128, seed=11, test_fraction=0.5,
                              difficulty=difficulty, style="lowpoly")  # fmt: skip
    loaded = load_dataset(tmp_path / "syn")
    assert loaded.categories == CATEGORIES
    by_name = {r.name: r for r in loaded.records}
    hidden = 0
    for index, record in enumerate(sorted(written.records, key=lambda r: r.name)):
        sample = render_lowpoly(index, 128, 11, test_fraction=0.5, difficulty=difficulty)
        got = by_name[record.name]
        assert got.label == sample.label == CATEGORIES[index % len(CATEGORIES)]
        assert set(got.parts) == set(CATEGORY_PARTS[sample.label])
        assert got.split == render_cartoon(index, 64, 0, test_fraction=0.5).split
        x0, y0, x1, y1 = got.box
        for name, kp in got.parts.items():
            if not kp.visible:
                hidden += 1
                continue
            assert x0 <= kp.x <= x1 and y0 <= kp.y <= y1, (index, name)
            assert ROLES[sample.part_map[int(kp.y), int(kp.x)] - 1] == name, (index, name)
    assert (hidden > 0) == (difficulty == "hard")  # occluders hide keypoints in hard data only


def test_lowpoly_poses_spread_and_face_both_ways() -> None:
    samples = [render_lowpoly(i, 96, 3) for i in range(1, 160, 4)]  # birds
    angles = np.array([s.angle for s in samples])
    assert np.abs(angles).max() <= 45.0 and angles.std() > 10.0
    assert 0.25 < np.mean([s.mirrored for s in samples]) < 0.75
    # the annotated head lies ahead of the tail in the facing direction
    ahead = [(s.parts["head"].x > s.parts["tail"].x) != s.mirrored for s in samples]
    assert all(ahead)
