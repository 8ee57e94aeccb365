"""A diagnosis written by ``query --write`` shows in ``diagnosed-patterns`` at once: the FLAGGED
edges that query reads are rebuilt after such a write (issue 13)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from explgraph.cli import main
from tests.helpers.mined import MinedToy


def _cli(
    store: str, *args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setattr(sys, "argv", ["explgraph", "--quiet", "--store", store, *args])
    try:
        main()
    except SystemExit as done:
        assert not done.code, capsys.readouterr().err
    return capsys.readouterr().out


def test_a_diagnosis_set_by_hand_is_flagged(
    mined_toy: MinedToy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    model = mined_toy.model_id

    def flagged() -> list[str]:
        out = _cli(
            store,
            "query",
            "diagnosed-patterns",
            "-p",
            f"model={model}",
            "-p",
            "limit=100000",
            "--format",
            "json",
            monkeypatch=monkeypatch,
            capsys=capsys,
        )
        return [row["pattern_id"] for row in json.loads(out)]

    before = flagged()
    rows = json.loads(
        _cli(
            store,
            "query",
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.pattern_id AS id ORDER BY id LIMIT 1",
            "-p",
            f"m={model}",
            "--format",
            "json",
            monkeypatch=monkeypatch,
            capsys=capsys,
        )
    )
    pattern = rows[0]["id"]
    assert pattern not in before
    _cli(
        store, "query", "--write", "MATCH (p:Pattern {pattern_id: $id}) "
        "SET p.diagnosis = 'background', p.off_object = 2.0", "-p", f"id={pattern}",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    after = flagged()
    assert after[0] == pattern  # off_object 2.0: above every share, so first
    assert sorted(after) == sorted([*before, pattern])
