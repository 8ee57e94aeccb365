"""``evaluate parts``' graph-ablation controls on the mined toy graph: the two controls are
baselines, the graph contribution is AOG / best control, reading choices are scored against
the annotated facing, and a dev sweep of the shot prior's σ is reported apart."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from explgraph.cli import main
from queries.aog.controls import SHOT_PRIOR_SIGMA
from tests.helpers.mined import TOY_LABEL, MinedToy


def _run(store: str, *args: str, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["explgraph", "--quiet", "--store", store, *args])
    code = 0
    try:
        main()
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_controls_contribution_mirror_choice_and_sweep(
    mined_toy: MinedToy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = (
        "evaluate", "parts", mined_toy.model_id, "--part", "head", "--label", TOY_LABEL,
        "--annotations", str(mined_toy.data_dir / "annotations.json"),
        "--draws", "2", "--seed", "11", "--cache-dir", str(mined_toy.cache_dir),
    )  # fmt: skip
    sweep = ("--shot-prior-sweep", f"0.05,{SHOT_PRIOR_SIGMA}")
    code, out, err = _run(store, *args, *sweep, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    summary = result["summary"]
    controls = {name: summary[name]["mean"] for name in ("appearance_alone",
                                                          "appearance_shot_prior")}  # fmt: skip
    best = min(controls, key=lambda name: controls[name])
    assert result["best_control"] == best
    assert math.isclose(result["graph_contribution"], summary["aog"]["mean"] / controls[best])
    assert ("ADDS NOTHING" in result["contribution_verdict"]) == (result["graph_contribution"] >= 1)
    assert result["shot_prior_sigma"] == SHOT_PRIOR_SIGMA
    # the sweep is reported apart, and at the chosen sigma it is the control itself
    assert set(result["shot_prior_sweep"]) == {
        "shot_prior_sigma=0.05",
        f"shot_prior_sigma={SHOT_PRIOR_SIGMA:g}",
    }
    for row in result["per_draw"]:
        assert row["shot_prior_sweep"][f"shot_prior_sigma={SHOT_PRIOR_SIGMA:g}"] == row[
            "baselines"]["appearance_shot_prior"]  # fmt: skip
        assert len(row["shot_frames"]) == 3
    mirror = result["mirror_choice"]
    assert set(mirror["accuracy"]) == {"aog", "appearance_alone", "appearance_shot_prior",
                                       "graph", "shot_prior_sigma=0.05",
                                       f"shot_prior_sigma={SHOT_PRIOR_SIGMA:g}"}  # fmt: skip
    for name, value in mirror["accuracy"].items():
        assert math.isnan(value) or 0 <= value <= 1, name
    assert mirror["frame_faces_left"] in (0.0, 1.0) or math.isnan(mirror["frame_faces_left"])
    assert mirror["frame_source"] in ("training split", "shots", "none (the readings split evenly)")
    assert math.isnan(mirror["graph_sign_free"]) or 0.5 <= mirror["graph_sign_free"] <= 1

    # another sigma changes the shot-prior control and nothing else
    code, out, err = _run(store, *args, "--shot-prior-sigma", "0.2", "--json", capsys=capsys,
                          monkeypatch=monkeypatch)  # fmt: skip
    assert code == 0, err
    other = json.loads(out)
    assert other["summary"]["aog"] == summary["aog"]
    assert other["summary"]["appearance_alone"] == summary["appearance_alone"]
    assert other["shot_prior_sigma"] == 0.2

    code, table, err = _run(store, *args, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "graph contribution" in table and "annotated facing" in table
    code, _, err = _run(store, *args, "--shot-prior-sweep", "0.1,x", capsys=capsys,
                        monkeypatch=monkeypatch)  # fmt: skip
    assert code == 1 and "--shot-prior-sweep" in err and len(err.strip().splitlines()) == 1
