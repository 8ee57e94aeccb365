"""Models written before the write-time answers existed get them on the next writable open.

The answers themselves are checked against brute force in tests/unit/test_graphstore_precompute
and tests/integration/test_canned_queries; here a fresh write and a backfill must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphstore import GraphRecords, GraphStore
from graphstore.testing.synthetic import LayerShape, synthetic_records
from queries.canned import run_canned
from tests.helpers.stores import open_store

THREE_LAYERS = (
    LayerShape("low", 4, 8.0, 3),
    LayerShape("mid", 4, 8.0, 2),
    LayerShape("high", 2, 16.0, 2),
)


def _records() -> GraphRecords:
    return synthetic_records(
        "m", channels=3, layers=THREE_LAYERS, parents_per_pattern=3, n_images=2
    )


def _answers(store: GraphStore, records: GraphRecords) -> dict[str, Any]:
    bottom = records.patterns["pattern_id"].iloc[0]
    return {
        "paths": run_canned(store, "path-to-top", {"pattern": bottom, "limit": 5}),
        "strongest": run_canned(store, "strongest-relations", {"model": "m", "layer": "low"}),
        "busy": run_canned(store, "busy-filters", {"model": "m", "limit": 100}),
    }


def _forget_answers(store: GraphStore) -> None:
    """Make ``store`` look written by the version before the write-time answers."""
    for statement in (
        "MATCH (:Layer)-[e:RANKED_CHILD]->(:Pattern) DELETE e",
        "MATCH (:Pattern)-[e:TOP_PATH]->(:Pattern) DELETE e",
        "MATCH (f:Filter) SET f.busy_active = NULL, f.busy_cells = NULL",
        "MATCH (m:Model) SET m.precomputed = NULL",
    ):
        store.query(statement, write=True)


def test_a_model_without_answers_is_backfilled(store_spec: str) -> None:
    records = _records()
    with open_store(store_spec) as store:
        store.write_model(records)
        fresh = _answers(store, records)
        assert fresh["paths"] and fresh["strongest"] and fresh["busy"]
        _forget_answers(store)
        assert _answers(store, records)["paths"] == []
    with open_store(store_spec) as store:  # the writable open fills them in
        assert store.query("MATCH (m:Model) RETURN m.precomputed AS v") == [{"v": 1}]
        assert _answers(store, records) == fresh
        assert store.backfill_precomputed() == []  # nothing left to do


def test_a_read_only_open_of_an_old_ladybug_store_backfills(tmp_path: Path) -> None:
    """An old store lacks the tables and columns too; a read-only open still answers."""
    import ladybug

    spec = str(tmp_path / "store")
    records = _records()
    with open_store(spec) as store:
        store.write_model(records)
        fresh = _answers(store, records)
    database = ladybug.Database(str(Path(spec) / "graph.lbug"))
    connection = ladybug.Connection(database)
    for statement in (
        "DROP TABLE TOP_PATH",
        "DROP TABLE RANKED_CHILD",
        "ALTER TABLE Model DROP precomputed",
        "ALTER TABLE Filter DROP busy_cells",
    ):
        connection.execute(statement)
    connection.close()
    database.close()
    with open_store(spec, read_only=True) as reader:
        assert _answers(reader, records) == fresh
