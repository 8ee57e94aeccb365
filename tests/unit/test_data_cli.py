"""``explgraph dataset synth`` and ``explgraph dataset info`` through the console entry point."""

from __future__ import annotations

from pathlib import Path

from miner.data.folder import load_dataset
from miner.data.images import box_too_small
from tests.helpers.cli import run_cli


def test_synth_then_info(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    made = run_cli(
        "dataset", "synth", out, "--n", "8", "--size", "64", "--seed", "1",
        "--test-fraction", "0.5", quiet=True,
    )  # fmt: skip
    assert f"wrote 8 images of 64x64 px (seed 1) to {out}" in made.output
    rows = {line.split()[0]: line.split()[1:] for line in made.output.splitlines() if line}
    assert rows["category"] == ["train", "test", "total"]
    assert rows["quadruped"] == ["1", "1", "2"]
    assert rows["total"] == ["4", "4", "8"]
    assert (out / "annotations.json").is_file()
    assert len(list(out.rglob("*.png"))) == 8

    shown = run_cli("dataset", "info", out)
    assert "8 images" in shown.output
    assert "categories (4): quadruped, bird, fish, giraffe" in shown.output
    small = sum(box_too_small(rec.box) for rec in load_dataset(out).records)
    assert f"boxes: 8 of 8 images ({small} smaller than 50 px)" in shown.output
    assert "head (8)" in shown.output and "beak (2)" in shown.output


def test_info_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    err = run_cli("dataset", "info", tmp_path, expect=1).stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: no images") and "point at a folder of images" in err[0]
