"""The store commands end to end through ``explgraph.cli.main`` on every engine."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from graphstore import GraphRecords
from tests.helpers.cli import run_cli
from tests.helpers.stores import open_store


@pytest.fixture
def filled(store_spec: str, tiny_records: Callable[..., GraphRecords]) -> GraphRecords:
    records = tiny_records("m1")
    with open_store(store_spec) as store:
        store.write_model(records)
    return records


def test_create_without_write_exits_1_with_one_line(store_spec: str, filled: GraphRecords) -> None:
    refused = run_cli("query", "CREATE (n:X)", store=store_spec, expect=1)

    assert refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith("error: ") and "--write" in refused.stderr
    counted = run_cli(
        "query", "MATCH (n:Model) RETURN count(n) AS c", "--format", "json", store=store_spec
    )
    assert json.loads(counted.stdout) == [{"c": 1}]


def test_models_and_info(store_spec: str, filled: GraphRecords) -> None:
    listed = run_cli("models", "--format", "json", store=store_spec)
    [model] = json.loads(listed.stdout)
    assert model["model_id"] == "m1" and model["status"] == "complete"
    assert model["n_patterns"] == len(filled.patterns)

    info = run_cli("store", "info", store=store_spec)
    assert "models: 1" in info.stdout


def test_query_with_params_in_csv(store_spec: str, filled: GraphRecords) -> None:
    result = run_cli(
        "query",
        "MATCH (p:Pattern) WHERE p.layer = $layer RETURN p.pattern_id AS id ORDER BY id",
        "--param",
        "layer=high",
        "--format",
        "csv",
        store=store_spec,
    )

    lines = result.stdout.strip().splitlines()
    assert lines[0] == "id"
    assert lines[1:] == sorted(filled.patterns.query("layer == 'high'")["pattern_id"])


def test_syntax_error_and_unknown_model_are_one_line(store_spec: str, filled: GraphRecords) -> None:
    for args in (("query", "MATCH (n RETURN n"), ("delete", "nope", "--yes")):
        err = run_cli(*args, store=store_spec, expect=1).stderr
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_delete_with_yes(store_spec: str, filled: GraphRecords) -> None:
    deleted = run_cli("delete", "m1", "--yes", store=store_spec)

    assert "deleted m1" in deleted.stdout
    listed = run_cli("models", "--format", "json", store=store_spec)
    assert json.loads(listed.stdout) == []
