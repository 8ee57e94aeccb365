"""The store commands end to end through ``explgraph.cli.main`` on every engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from explgraph.cli import main
from graphstore import GraphRecords
from tests.helpers.stores import open_store

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    store_spec: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """Run ``explgraph --store <spec> ARGS`` and return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["explgraph", "--store", store_spec, *args])
        code = 0
        try:
            main()
        except SystemExit as done:
            code = int(done.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def filled(store_spec: str, tiny_records: Callable[..., GraphRecords]) -> GraphRecords:
    records = tiny_records("m1")
    with open_store(store_spec) as store:
        store.write_model(records)
    return records


def test_create_without_write_exits_1_with_one_line(cli: Cli, filled: GraphRecords) -> None:
    code, out, err = cli("query", "CREATE (n:X)")

    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "--write" in err
    _, out, _ = cli("query", "MATCH (n:Model) RETURN count(n) AS c", "--format", "json")
    assert json.loads(out) == [{"c": 1}]


def test_models_and_info(cli: Cli, filled: GraphRecords) -> None:
    code, out, _ = cli("models", "--format", "json")
    assert code == 0
    [model] = json.loads(out)
    assert model["model_id"] == "m1" and model["status"] == "complete"
    assert model["n_patterns"] == len(filled.patterns)

    code, out, _ = cli("store", "info")
    assert code == 0
    assert "models: 1" in out


def test_query_with_params_in_csv(cli: Cli, filled: GraphRecords) -> None:
    code, out, _ = cli(
        "query",
        "MATCH (p:Pattern) WHERE p.layer = $layer RETURN p.pattern_id AS id ORDER BY id",
        "--param",
        "layer=high",
        "--format",
        "csv",
    )

    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "id"
    assert lines[1:] == sorted(filled.patterns.query("layer == 'high'")["pattern_id"])


def test_syntax_error_and_unknown_model_are_one_line(cli: Cli, filled: GraphRecords) -> None:
    for args in (("query", "MATCH (n RETURN n"), ("delete", "nope", "--yes")):
        code, _, err = cli(*args)
        assert code == 1
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_delete_with_yes(cli: Cli, filled: GraphRecords) -> None:
    code, out, _ = cli("delete", "m1", "--yes")

    assert code == 0 and "deleted m1" in out
    _, out, _ = cli("models", "--format", "json")
    assert json.loads(out) == []
