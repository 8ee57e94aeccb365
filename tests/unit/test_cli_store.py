"""The store commands' argument parsing and output, on a LadybugDB store in tmp_path."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from explgraph.cli import app, main
from explgraph.cli.commands.store import OutputFormat, render_rows
from explgraph.core.errors import InputError, ReadOnlyViolation
from graphstore.testing.synthetic import LayerShape, synthetic_records
from queries.canned import parse_params
from tests.helpers.stores import open_store

runner = CliRunner()


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    spec = str(tmp_path / "store")
    records = synthetic_records(
        "m1",
        channels=2,
        layers=(LayerShape("low", 4, 8.0, 2), LayerShape("high", 2, 16.0, 2)),
        parents_per_pattern=2,
        n_images=2,
        fires_per_image=2,
    )
    with open_store(spec) as store:
        store.write_model(records)
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
    result = runner.invoke(app, ["--store", store_dir, "models", "--format", "json"])
    assert result.exit_code == 0, result.output
    [model] = json.loads(result.output)
    assert model["model_id"] == "m1" and model["status"] == "complete"
    assert model["n_patterns"] == 8


def test_store_info(store_dir: str) -> None:
    result = runner.invoke(app, ["--store", store_dir, "store", "info"])
    assert result.exit_code == 0, result.output
    assert "engine: ladybug" in result.output and "models: 1" in result.output


def test_store_option_from_environment(store_dir: str) -> None:
    result = runner.invoke(app, ["models"], env={"EXPLGRAPH_STORE": store_dir})
    assert result.exit_code == 0 and "m1" in result.output


def test_query_with_param_and_format(store_dir: str) -> None:
    result = runner.invoke(
        app,
        [
            "--store",
            store_dir,
            "query",
            "MATCH (p:Pattern) WHERE p.layer = $layer AND p.filter = $f "
            "RETURN p.pattern_id AS id ORDER BY id",
            "--param",
            "layer=high",
            "-p",
            "f=1",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["id", "m1/high/f1/p0", "m1/high/f1/p1"]


def test_query_refuses_a_write_without_the_flag(store_dir: str) -> None:
    result = runner.invoke(app, ["--store", store_dir, "query", "CREATE (n:Image {image_id: 'x'})"])
    assert isinstance(result.exception, ReadOnlyViolation)
    result = runner.invoke(
        app, ["--store", store_dir, "query", "CREATE (n:Image {image_id: 'x'})", "--write"]
    )
    assert result.exit_code == 0, result.output
    with open_store(store_dir, read_only=True) as store:
        assert store.query("MATCH (n:Image {image_id: 'x'}) RETURN count(n) AS c") == [{"c": 1}]


def test_bad_format_is_a_usage_error(store_dir: str) -> None:
    result = runner.invoke(app, ["--store", store_dir, "query", "RETURN 1", "--format", "xml"])
    assert result.exit_code == 2


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["explgraph", *args])
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "CREATE (n:X)"], "--write"),
        (["query", "MATCH (n RETURN n"], "Parser exception"),
        (["delete", "m9", "--yes"], "known models: m1"),
        (["query", "RETURN 1", "--param", "oops"], "name=value"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    store_dir: str,
    args: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _main(["--store", store_dir, *args], monkeypatch)
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: ") and needle in err
    assert len(err.strip().splitlines()) == 1


def test_missing_store_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(["--store", str(tmp_path / "none"), "models"], monkeypatch)
    assert code == 1
    assert "no store at" in capsys.readouterr().err


def test_delete_asks_unless_yes(store_dir: str) -> None:
    declined = runner.invoke(app, ["--store", store_dir, "delete", "m1"], input="n\n")
    assert declined.exit_code != 0
    with open_store(store_dir, read_only=True) as store:
        assert [m["model_id"] for m in store.list_models()] == ["m1"]
    accepted = runner.invoke(app, ["--store", store_dir, "delete", "m1"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    with open_store(store_dir, read_only=True) as store:
        assert store.list_models() == []


def test_smoke_writes_a_complete_synthetic_model(tmp_path: Path) -> None:
    spec = str(tmp_path / "smoke")
    for _ in range(2):  # a second run replaces the first
        result = runner.invoke(
            app, ["--quiet", "--store", spec, "store", "smoke", "--channels", "1"]
        )
        assert result.exit_code == 0, result.output
    assert "wrote smoke (complete): 120 patterns" in result.output
    with open_store(spec, read_only=True) as store:
        [model] = store.list_models()
    assert model["model_id"] == "smoke" and model["n_patterns"] == 120
