"""Every store behaviour, run on each engine (LadybugDB, the ArcadeDB Bolt peer, Neo4j)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pytest

from explgraph.core.errors import QuerySyntaxError, ReadOnlyViolation, StoreError, UnknownModel
from graphstore import GraphRecords, GraphStore
from tests.helpers.stores import open_store

Build = Callable[..., GraphRecords]


def _count(store: GraphStore, pattern: str, params: dict[str, object] | None = None) -> int:
    rows = store.query(f"MATCH {pattern} RETURN count(*) AS c", params or {})
    return int(rows[0]["c"])


def test_write_model_stores_every_node_and_edge(store: GraphStore, tiny_records: Build) -> None:
    records = tiny_records("m1")
    store.write_model(records)

    [model] = store.list_models()
    assert model["model_id"] == "m1"
    assert model["status"] == "complete"
    assert model["n_layers"] == len(records.layers) == 2
    assert model["n_filters"] == len(records.filters)
    assert model["n_patterns"] == len(records.patterns)
    assert model["n_parents"] == len(records.parents)
    assert model["n_fires"] == len(records.fires)
    assert _count(store, "(:Image)") == len(records.images)
    assert _count(store, "(:Model)-[:HAS_LAYER]->(:Layer)") == 2
    assert _count(store, "(:Layer)-[:HAS_FILTER]->(:Filter)") == len(records.filters)
    assert _count(store, "(:Filter)-[:HAS_PATTERN]->(:Pattern)") == len(records.patterns)

    # properties survive the round trip with their types and nulls
    first = records.parents.iloc[0]
    [edge] = store.query(
        "MATCH (c:Pattern {pattern_id: $c})-[e:PARENT]->(p:Pattern {pattern_id: $p}) "
        "RETURN e.dx AS dx, e.weight AS weight",
        {"c": first["src"], "p": first["dst"]},
    )
    assert edge["dx"] == pytest.approx(first["dx"])
    assert edge["weight"] == pytest.approx(first["weight"])
    [pattern] = store.query(
        "MATCH (p:Pattern {pattern_id: $id}) RETURN p.diagnosis AS diagnosis, p.idx AS idx",
        {"id": records.patterns["pattern_id"].iloc[1]},
    )
    assert pattern == {"diagnosis": None, "idx": int(records.patterns["idx"].iloc[1])}


def test_describe_model_returns_properties_layers_and_counts(
    store: GraphStore, tiny_records: Build
) -> None:
    records = tiny_records("m1")
    store.write_model(records)

    described = store.describe_model("m1")

    assert described["layers"] == ["low", "high"]
    assert described["architecture"] == "synthetic"
    assert described["status"] == "complete"
    assert [layer["name"] for layer in described["layer_summary"]] == ["low", "high"]
    assert described["n_patterns"] == len(records.patterns)


def test_writing_a_model_twice_leaves_one_copy(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1"))
    store.write_model(tiny_records("m1"))

    assert _count(store, "(m:Model {model_id: 'm1'})") == 1
    [model] = store.list_models()
    records = tiny_records("m1")
    assert model["n_patterns"] == len(records.patterns)
    assert model["n_parents"] == len(records.parents)
    assert _count(store, "(:Image)") == len(records.images)


def test_rewriting_a_model_replaces_its_content(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1", channels=3))
    smaller = tiny_records("m1", channels=1)

    store.write_model(smaller)

    [model] = store.list_models()
    assert model["n_filters"] == len(smaller.filters)
    assert model["n_patterns"] == len(smaller.patterns)
    assert _count(store, "(:Pattern)") == len(smaller.patterns)


def test_models_side_by_side_share_images(store: GraphStore, tiny_records: Build) -> None:
    one, two = tiny_records("m1", n_images=4), tiny_records("m2", n_images=6)
    store.write_model(one)
    store.write_model(two)

    assert [m["model_id"] for m in store.list_models()] == ["m1", "m2"]
    assert _count(store, "(:Image)") == 6  # same seed: m1's four images are among m2's six

    store.delete_model("m2")

    assert [m["model_id"] for m in store.list_models()] == ["m1"]
    assert _count(store, "(:Image)") == 4  # m1 still fires on its four
    assert _count(store, "(:Pattern)") == len(one.patterns)
    assert _count(store, "()-[:FIRES]->()") == len(one.fires)

    store.delete_model("m1")
    assert store.list_models() == []
    assert _count(store, "(n)") == 0


def test_status_transitions(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1"))

    store.set_model_status("m1", "mining")
    assert store.describe_model("m1")["status"] == "mining"
    store.set_model_status("m1", "complete")
    assert store.describe_model("m1")["status"] == "complete"
    with pytest.raises(StoreError, match="mining, complete"):
        store.set_model_status("m1", "done")
    with pytest.raises(UnknownModel):
        store.set_model_status("nope", "complete")


def test_a_write_that_fails_midway_keeps_the_old_copy(
    store: GraphStore, tiny_records: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_model(tiny_records("m1", channels=3))
    before = store.list_models()
    real_insert = store._insert_relationships

    def fail_on_parent(rel_type: str, table: pa.Table) -> None:
        if rel_type == "PARENT":
            raise StoreError("simulated crash in the middle of the write")
        real_insert(rel_type, table)

    monkeypatch.setattr(store, "_insert_relationships", fail_on_parent)
    with pytest.raises(StoreError, match="simulated crash"):
        store.write_model(tiny_records("m1"))

    assert store.list_models() == before  # the old complete copy, untouched
    assert store.garbage() == {"staging": {}, "unfinished": {}, "orphans": {}}

    monkeypatch.setattr(store, "_insert_relationships", real_insert)
    store.write_model(tiny_records("m1"))
    [model] = store.list_models()
    assert model["status"] == "complete"
    assert model["n_parents"] == len(tiny_records("m1").parents)


def test_unknown_model_lists_the_known_ones(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1"))

    with pytest.raises(UnknownModel, match="known models: m1"):
        store.describe_model("m9")
    with pytest.raises(UnknownModel, match="m9"):
        store.delete_model("m9")


def test_query_with_parameters(store: GraphStore, tiny_records: Build) -> None:
    records = tiny_records("m1")
    store.write_model(records)

    rows = store.query(
        "MATCH (p:Pattern) WHERE p.layer = $layer AND p.filter = $f "
        "RETURN p.pattern_id AS id ORDER BY id",
        {"layer": "high", "f": 1},
    )

    expected = records.patterns.query("layer == 'high' and filter == 1")["pattern_id"]
    assert [row["id"] for row in rows] == sorted(expected)


def test_query_frame_gives_the_rows_of_query_and_refuses_writes(
    store: GraphStore, tiny_records: Build
) -> None:
    """The columnar read (what loading a graph uses) returns exactly what ``query`` returns."""
    store.write_model(tiny_records("m1"))
    statement = (
        "MATCH (c:Pattern)-[r:PARENT]->(q:Pattern) WHERE c.model_id = $m "
        "RETURN c.pattern_id AS child, q.pattern_id AS parent, r.weight AS weight, "
        "c.filter AS filter ORDER BY child, parent"
    )
    rows = store.query(statement, {"m": "m1"})
    frame = store.query_frame(statement, {"m": "m1"})

    assert len(rows) > 0
    assert list(frame.columns) == ["child", "parent", "weight", "filter"]
    assert frame.to_dict("records") == rows
    with pytest.raises(ReadOnlyViolation, match="--write"):
        store.query_frame("MATCH (i:Image) DETACH DELETE i")


def test_read_only_query_refuses_a_write_and_changes_nothing(store: GraphStore) -> None:
    store.write_nodes("Image", pd.DataFrame({"image_id": ["img0"], "label": ["a"]}))
    for statement in (
        "CREATE (n:Image {image_id: 'x'})",
        "MATCH (i:Image {image_id: 'img0'}) SET i.label = 'b'",
        "MATCH (i:Image) DETACH DELETE i",
    ):
        with pytest.raises(ReadOnlyViolation, match="--write"):
            store.query(statement)

    rows = store.query("MATCH (i:Image) RETURN i.image_id AS id, i.label AS label")
    assert rows == [{"id": "img0", "label": "a"}]


def test_write_query_with_write_flag_changes_the_store(store: GraphStore) -> None:
    store.query("CREATE (n:Image {image_id: 'x', label: 'y'})", write=True)

    assert store.query("MATCH (n:Image) RETURN n.label AS label") == [{"label": "y"}]


def test_store_opened_read_only_refuses_every_write(store_spec: str, tiny_records: Build) -> None:
    with open_store(store_spec) as writer:
        writer.write_model(tiny_records("m1"))
    with open_store(store_spec, read_only=True) as reader:
        assert [m["model_id"] for m in reader.list_models()] == ["m1"]
        with pytest.raises(ReadOnlyViolation):
            reader.query("CREATE (n:Image {image_id: 'x'})", write=True)
        with pytest.raises(ReadOnlyViolation):
            reader.delete_model("m1")
        with pytest.raises(ReadOnlyViolation):
            reader.query("CREATE (n:Image {image_id: 'x'})")
        assert reader.query("MATCH (n:Image {image_id: 'x'}) RETURN count(n) AS c") == [{"c": 0}]


def test_syntax_error_is_reported_as_such(store: GraphStore) -> None:
    with pytest.raises(QuerySyntaxError):
        store.query("MATCH (n RETURN n")


def test_write_nodes_upserts_by_key(store: GraphStore) -> None:
    store.write_nodes("Image", pd.DataFrame({"image_id": ["a", "b"], "label": ["x", "x"]}))
    store.write_nodes("Image", pd.DataFrame({"image_id": ["b", "c"], "label": ["y", "y"]}))

    rows = store.query("MATCH (i:Image) RETURN i.image_id AS id, i.label AS label ORDER BY id")
    assert rows == [
        {"id": "a", "label": "x"},
        {"id": "b", "label": "y"},
        {"id": "c", "label": "y"},
    ]


def test_write_relationships_upserts_by_end_nodes(store: GraphStore, tiny_records: Build) -> None:
    records = tiny_records("m1")
    store.write_model(records)
    ids = records.patterns["pattern_id"]
    first = pd.DataFrame(
        {"src": [ids[0], ids[1]], "dst": [ids[2], ids[3]], "similarity": [0.1, 0.2]}
    )
    second = pd.DataFrame({"src": [ids[0]], "dst": [ids[2]], "similarity": [0.9]})

    store.write_relationships("MATCHES", first)
    store.write_relationships("MATCHES", second)

    rows = store.query(
        "MATCH (a:Pattern)-[m:MATCHES]->(b:Pattern) RETURN a.pattern_id AS src, m.similarity AS s "
        "ORDER BY src"
    )
    assert rows == [
        {"src": ids[0], "s": pytest.approx(0.9)},
        {"src": ids[1], "s": pytest.approx(0.2)},
    ]


def test_bad_records_are_refused_before_anything_is_written(
    store: GraphStore, tiny_records: Build
) -> None:
    records = tiny_records("m1")
    records.parents.loc[0, "dst"] = "m1/nowhere"

    with pytest.raises(StoreError, match="m1/nowhere"):
        store.write_model(records)
    assert store.list_models() == []


def test_schema_is_idempotent(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1"))
    store.ensure_schema()
    store.ensure_schema()

    assert [m["model_id"] for m in store.list_models()] == ["m1"]
