"""``evaluate parts --draws N --seed S`` on the mined toy graph: seeded shot draws, mean ± sd,
the facing-aware and oracle-facing priors, left/right accuracy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from explgraph.cli import main
from tests.helpers.mined import TOY_LABEL, MinedToy


def _run(
    store: str, *args: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["explgraph", "--quiet", "--store", store, *args])
    code = 0
    try:
        main()
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_parts_over_seeded_draws(
    mined_toy: MinedToy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = (
        "evaluate", "parts", mined_toy.model_id, "--part", "head", "--label", TOY_LABEL,
        "--annotations", str(mined_toy.data_dir / "annotations.json"),
        "--draws", "3", "--seed", "11", "--cache-dir", str(mined_toy.cache_dir),
    )  # fmt: skip
    code, out, err = _run(store, *args, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["draw_seeds"] == [11, 12, 13] and len(result["per_draw"]) == 3
    shot_sets = {tuple(row["shots"]) for row in result["per_draw"]}
    assert len(shot_sets) > 1  # the draws differ
    summary = result["summary"]
    assert set(summary) == {
        "aog", "raw_filters", "nn_transfer", "static_prior", "facing_prior", "oracle_facing_prior",
        "appearance_alone", "appearance_shot_prior",
    }  # fmt: skip
    assert summary["oracle_facing_prior"]["reference_only"]
    assert result["best_baseline"] != "oracle_facing_prior"
    for name, row in summary.items():
        assert row["min"] <= row["mean"] <= row["max"], name
        assert 0 <= row["left_right"] <= 1, name
    # the oracle knows the side: it is never on the wrong half
    assert summary["oracle_facing_prior"]["left_right"] == 1.0
    code, again, err = _run(store, *args, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert json.loads(again)["summary"] == summary  # seeded: the same draws, the same figures
    code, table, err = _run(store, *args, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "left/right" in table and "AOG / best baseline" in table
    code, _, err = _run(
        store, *args, "--shots", str(tmp_path / "x.json"), capsys=capsys, monkeypatch=monkeypatch
    )
    assert code != 0 and "not both" in err
