"""Canned queries: parameter binding, errors, engine variants, and ``explgraph query NAME``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from explgraph.core.errors import InputError
from graphstore import GraphRecords
from graphstore.testing.synthetic import LayerShape, synthetic_records
from queries.canned import CANNED, get_canned, run_canned
from tests.helpers.cli import run_cli
from tests.helpers.stores import open_store


@pytest.fixture
def records() -> GraphRecords:
    return synthetic_records(
        "m1",
        channels=2,
        layers=(
            LayerShape("low", 4, 8.0, 2),
            LayerShape("mid", 4, 8.0, 2),
            LayerShape("high", 2, 16.0, 2),
        ),
        parents_per_pattern=2,
        n_images=3,
        fires_per_image=2,
    )


@pytest.fixture
def store_dir(tmp_path: Path, records: GraphRecords) -> str:
    spec = str(tmp_path / "store")
    with open_store(spec) as store:
        store.write_model(records)
    return spec


def test_the_issue_list_is_covered() -> None:
    assert {
        "models",
        "filter-patterns",
        "busy-filters",
        "pattern-relations",
        "strongest-relations",
        "pattern-top-images",
        "image-patterns",
        "path-to-top",
        "part-patterns",
    } <= set(CANNED)


def test_bind_fills_defaults_and_rejects_missing_or_unknown() -> None:
    query = get_canned("strongest-relations")
    assert query.bind({"model": "m", "layer": "low"}) == {"model": "m", "layer": "low", "limit": 10}
    with pytest.raises(InputError, match="needs --param layer"):
        query.bind({"model": "m"})
    with pytest.raises(InputError, match="no parameter"):
        query.bind({"model": "m", "layer": "low", "colour": 1})


def test_null_means_any_for_optional_filters() -> None:
    # LadybugDB cannot bind a null string parameter, so "any layer" travels as ''
    bound = get_canned("busy-filters").bind({"model": "m", "layer": None})
    assert bound["layer"] == ""


def test_unknown_query_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="filter-patterns"):
        get_canned("no-such-query")


def test_engine_variant_only_where_needed() -> None:
    path = get_canned("path-to-top")
    assert path.text_for("ladybug") != path.text_for("bolt")
    assert "string_split(" in path.text_for("ladybug")
    # LadybugDB lacks CALL {} subqueries, names split() string_split() and needs a join hint;
    # filter-patterns anchors where each engine's plan is fast (Bolt: the layer, not model_id)
    assert [q.name for q in CANNED.values() if q.variants] == [
        "filter-patterns",
        "pattern-relations",
        "path-to-top",
        "diagnosed-patterns",
    ]


def test_precomputed_answers_only_for_their_parameter_values() -> None:
    busy = get_canned("busy-filters")
    assert busy.general is not None
    default = busy.bind({"model": "m"})
    assert busy.text_for("ladybug", default) == busy.cypher
    assert "busy_cells" in busy.cypher
    other = busy.bind({"model": "m", "cell": 4.0})
    assert busy.text_for("ladybug", other) == busy.general.cypher
    assert "count(DISTINCT" in busy.general.cypher
    assert busy.text_for("bolt", busy.bind({"model": "m", "cell": 8})) == busy.cypher


def test_path_to_top_refuses_more_paths_than_stored() -> None:
    from graphstore.schema import TOP_PATHS_PER_PATTERN

    path = get_canned("path-to-top")
    limit = TOP_PATHS_PER_PATTERN
    assert path.bind({"pattern": "p", "limit": limit})["limit"] == limit
    with pytest.raises(InputError, match=f"limit <= {limit}"):
        path.bind({"pattern": "p", "limit": limit + 1})


def test_run_canned_returns_plain_numbers(store_dir: str, records: GraphRecords) -> None:
    with open_store(store_dir, read_only=True) as store:
        rows = run_canned(store, "models")
    assert rows[0]["patterns"] == len(records.patterns)
    assert not any(isinstance(v, Decimal) for row in rows for v in row.values())


def test_cli_lists_canned_queries(store_dir: str) -> None:
    result = run_cli("query", "--list", "--format", "json", store=store_dir)
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == set(CANNED)
    assert listed["filter-patterns"]["parameters"] == "model layer filter"


def test_cli_runs_a_canned_query_by_name(store_dir: str, records: GraphRecords) -> None:
    result = run_cli(
        "query",
        "filter-patterns",
        "-p",
        "model=m1",
        "-p",
        "layer=mid",
        "-p",
        "filter=1",
        "-f",
        "json",
        store=store_dir,
    )
    rows = json.loads(result.stdout)
    p = records.patterns
    expected = p[(p["layer"] == "mid") & (p["filter"] == 1)]["pattern_id"]
    assert sorted(r["pattern_id"] for r in rows) == sorted(expected)


def test_cli_path_to_top_reaches_the_top(store_dir: str, records: GraphRecords) -> None:
    pattern = records.patterns[records.patterns["layer"] == "low"]["pattern_id"].iloc[0]
    result = run_cli(
        "query", "path-to-top", "-p", f"pattern={pattern}", "-f", "json", store=store_dir
    )
    rows = json.loads(result.stdout)
    assert rows and all(row["layers"] == ["low", "mid", "high"] for row in rows)


def test_cli_missing_parameter_is_one_clear_error(store_dir: str) -> None:
    result = run_cli("query", "filter-patterns", "-p", "model=m1", store=store_dir, expect=1)
    assert "needs --param layer" in result.error_line


def test_cli_plain_cypher_still_works(store_dir: str) -> None:
    result = run_cli("query", "MATCH (m:Model) RETURN m.model_id AS id", store=store_dir)
    assert "m1" in result.output


def test_cli_without_a_query_says_what_to_do(store_dir: str) -> None:
    result = run_cli("query", store=store_dir, expect=1)
    assert "--list" in result.error_line
