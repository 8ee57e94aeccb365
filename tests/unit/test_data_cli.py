"""``explgraph dataset synth`` and ``explgraph dataset info`` through Typer's CliRunner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from explgraph.cli import app, main
from miner.data.folder import load_dataset
from miner.data.images import box_too_small


def test_synth_then_info(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "--quiet",
            "dataset",
            "synth",
            str(out),
            "--n",
            "8",
            "--size",
            "64",
            "--seed",
            "1",
            "--test-fraction",
            "0.5",
        ],
    )
    assert made.exit_code == 0, made.output
    assert f"wrote 8 images of 64x64 px (seed 1) to {out}" in made.output
    rows = {line.split()[0]: line.split()[1:] for line in made.output.splitlines() if line}
    assert rows["category"] == ["train", "test", "total"]
    assert rows["quadruped"] == ["1", "1", "2"]
    assert rows["total"] == ["4", "4", "8"]
    assert (out / "annotations.json").is_file()
    assert len(list(out.rglob("*.png"))) == 8

    shown = runner.invoke(app, ["dataset", "info", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "8 images" in shown.output
    assert "categories (4): quadruped, bird, fish, giraffe" in shown.output
    small = sum(box_too_small(rec.box) for rec in load_dataset(out).records)
    assert f"boxes: 8 of 8 images ({small} smaller than 50 px)" in shown.output
    assert "head (8)" in shown.output and "beak (2)" in shown.output


def test_info_error_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["explgraph", "dataset", "info", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: no images") and "point at a folder of images" in err[0]
