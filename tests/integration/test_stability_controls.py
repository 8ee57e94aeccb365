"""``evaluate stability`` with every control of docs/method.md §7.3, on the mined toy graph."""

from __future__ import annotations

import json
import math
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


def test_stability_reports_every_control_signed_and_unsigned(
    mined_toy: MinedToy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = (
        "evaluate", "stability", mined_toy.model_id,
        "--annotations", str(mined_toy.data_dir / "annotations.json"),
        "--label", TOY_LABEL, "--split", "test", "--cache-dir", str(mined_toy.cache_dir),
    )  # fmt: skip
    code, out, err = _run(store, *args, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    for key in ("patterns", "frozen_prior", "filters", "initialisation", "no_parents"):
        assert 0 <= result["signed"][key] < 1, key
    fixed = result["fixed_points"]
    assert fixed["best"] <= fixed["centre"] + 1e-9
    assert math.isclose(fixed["best_signed"], fixed["centre_signed"], rel_tol=1e-5)
    top = result["per_layer"][-1]
    assert top["no_parents"] is None  # the control shares the top layer
    # one verdict per control and metric, each saying who wins
    assert len(result["verdicts"]) == 2 * 6
    assert all(("beat" in line) or ("CONTROL WINS" in line) for line in result["verdicts"])
    # the no-parents control is cached: a second run only infers, with the same figures
    graphs = list((mined_toy.cache_dir / "graphs").glob("graph-*"))
    code, again, err = _run(store, *args, "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert json.loads(again)["signed"] == result["signed"]
    assert sorted((mined_toy.cache_dir / "graphs").glob("graph-*")) == sorted(graphs)
    code, table, err = _run(store, *args, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert "fixed point at the crop centre" in table and "parents" in table
