"""One result format on every engine for nodes, relationships and paths (issue 11, item 8)."""

from __future__ import annotations

from collections.abc import Callable

from graphstore import GraphRecords, GraphStore

Build = Callable[..., GraphRecords]


def _first_fires(records: GraphRecords) -> tuple[str, str]:
    row = records.fires.sort_values(["src", "dst"]).iloc[0]
    return str(row["src"]), str(row["dst"])


def test_relationship_node_and_path_have_one_shape(store: GraphStore, tiny_records: Build) -> None:
    records = tiny_records("m1")
    store.write_model(records)
    image, pattern = _first_fires(records)
    expected = records.fires[(records.fires["src"] == image) & (records.fires["dst"] == pattern)]
    params = {"image": image, "pattern": pattern}

    [row] = store.query(
        "MATCH (i:Image {image_id: $image})-[f:FIRES]->(p:Pattern {pattern_id: $pattern}) "
        "RETURN f, p",
        params,
    )
    fires, node = row["f"], row["p"]
    assert fires["_type"] == "FIRES"
    assert set(fires) == {"_type", "model_id", "x", "y", "score", "rank"}
    assert fires["model_id"] == "m1"
    assert fires["score"] == expected["score"].iloc[0]
    assert node["_label"] == "Pattern" and node["pattern_id"] == pattern
    assert not any(key.startswith("_") and key != "_label" for key in node)
    assert all(value is not None for value in node.values())

    [row] = store.query(
        "MATCH path = (i:Image {image_id: $image})-[:FIRES]->(p:Pattern {pattern_id: $pattern}) "
        "RETURN path",
        params,
    )
    path = row["path"]
    assert [n["_label"] for n in path["_nodes"]] == ["Image", "Pattern"]
    assert [r["_type"] for r in path["_relationships"]] == ["FIRES"]
    assert path["_relationships"][0] == fires


def test_lists_and_maps_of_nodes_are_converted(store: GraphStore, tiny_records: Build) -> None:
    store.write_model(tiny_records("m1"))
    [row] = store.query(
        "MATCH (m:Model) RETURN [m] AS models, {model: m} AS holder, m.model_id AS id"
    )
    assert row["models"][0]["_label"] == "Model"
    assert row["holder"]["model"]["model_id"] == "m1"
    assert row["id"] == "m1"
