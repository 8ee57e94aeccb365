"""The store commands' argument parsing and output, on a LadybugDB store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from explgraph.cli.commands.store import OutputFormat, render_rows
from explgraph.core.errors import InputError
from queries.canned import parse_params
from tests.helpers.cli import run_cli
from tests.helpers.stores import open_store, write_small_model


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    spec = str(tmp_path / "store")
    write_small_model(spec)
    return spec


def test_parse_params_reads_json_and_falls_back_to_strings() -> None:
    assert parse_params(["n=3", "x=0.5", "name=conv5_3", "ids=[1, 2]", 's="7"', "e="]) == {
        "n": 3,
        "x": 0.5,
        "name": "conv5_3",
        "ids": [1, 2],
        "s": "7",
        "e": "",
    }
    assert parse_params(["q=a=b"]) == {"q": "a=b"}
    for bad in ("novalue", "=3", "bad key=1"):
        with pytest.raises(InputError, match="name=value"):
            parse_params([bad])


def test_render_rows_in_each_format() -> None:
    rows: list[dict[str, Any]] = [
        {"id": "a", "n": 1, "xs": [1, 2]},
        {"id": "bb", "n": None, "xs": []},
    ]
    assert json.loads(render_rows(rows, OutputFormat.json)) == rows
    assert render_rows(rows, OutputFormat.csv).splitlines() == ["id,n,xs", 'a,1,"[1, 2]"', "bb,,[]"]
    table = render_rows(rows, OutputFormat.table).splitlines()
    assert table[0].split() == ["id", "n", "xs"]
    assert table[2].split()[:2] == ["a", "1"]
    assert render_rows([], OutputFormat.table) == "(no rows)"


def test_models_lists_the_model(store_dir: str) -> None:
    result = run_cli("models", "--format", "json", store=store_dir)
    [model] = json.loads(result.stdout)
    assert model["model_id"] == "m1" and model["status"] == "complete"
    assert model["n_patterns"] == 8


def test_store_info(store_dir: str) -> None:
    result = run_cli("store", "info", store=store_dir)
    assert "engine: ladybug" in result.output and "models: 1" in result.output


def test_store_option_from_environment(store_dir: str) -> None:
    result = run_cli("models", env={"EXPLGRAPH_STORE": store_dir})
    assert "m1" in result.output


def test_query_with_param_and_format(store_dir: str) -> None:
    result = run_cli(
        "query",
        "MATCH (p:Pattern) WHERE p.layer = $layer AND p.filter = $f "
        "RETURN p.pattern_id AS id ORDER BY id",
        "--param",
        "layer=high",
        "-p",
        "f=1",
        "--format",
        "csv",
        store=store_dir,
    )
    assert result.stdout.split() == ["id", "m1/high/f1/p0", "m1/high/f1/p1"]


def test_query_refuses_a_write_without_the_flag(store_dir: str) -> None:
    create = "CREATE (n:Image {image_id: 'x'})"
    refused = run_cli("query", create, store=store_dir, expect=1)
    assert "--write" in refused.error_line  # the store's ReadOnlyViolation, as one line
    run_cli("query", create, "--write", store=store_dir)
    with open_store(store_dir, read_only=True) as store:
        assert store.query("MATCH (n:Image {image_id: 'x'}) RETURN count(n) AS c") == [{"c": 1}]


def test_bad_format_is_a_usage_error(store_dir: str) -> None:
    run_cli("query", "RETURN 1", "--format", "xml", store=store_dir, expect=2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "CREATE (n:X)"], "--write"),
        (["query", "MATCH (n RETURN n"], "Parser exception"),
        (["delete", "m9", "--yes"], "known models: m1"),
        (["query", "RETURN 1", "--param", "oops"], "name=value"),
    ],
)
def test_errors_are_one_line_and_exit_1(store_dir: str, args: list[str], needle: str) -> None:
    err = run_cli(*args, store=store_dir, expect=1).stderr
    assert err.startswith("error: ") and needle in err
    assert len(err.strip().splitlines()) == 1


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    result = run_cli("models", store=tmp_path / "none", expect=1)
    assert "no store at" in result.stderr


def test_delete_asks_unless_yes(store_dir: str) -> None:
    declined = run_cli("delete", "m1", store=store_dir, input="n\n", expect=None)
    assert declined.exit_code != 0
    with open_store(store_dir, read_only=True) as store:
        assert [m["model_id"] for m in store.list_models()] == ["m1"]
    run_cli("delete", "m1", store=store_dir, input="y\n")
    with open_store(store_dir, read_only=True) as store:
        assert store.list_models() == []


def test_smoke_writes_a_complete_synthetic_model(tmp_path: Path) -> None:
    spec = str(tmp_path / "smoke")
    for _ in range(2):  # a second run replaces the first
        result = run_cli("store", "smoke", "--channels", "1", store=spec, quiet=True)
    assert "wrote smoke (complete): 120 patterns" in result.output
    with open_store(spec, read_only=True) as store:
        [model] = store.list_models()
    assert model["model_id"] == "smoke" and model["n_patterns"] == 120
