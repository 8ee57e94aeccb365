"""The schema declaration and its two renderings."""

from __future__ import annotations

import re

import pytest

from explgraph.core.errors import StoreError
from graphstore.schema import (
    ADDED_PROPERTIES,
    NODES,
    RELATIONSHIPS,
    PropertyType,
    cypher_constraints,
    ladybug_ddl,
    node_spec,
    rel_spec,
)

LABELS = {
    "Model",
    "Layer",
    "Filter",
    "Pattern",
    "Image",
    "Part",
    "Template",
    "Store",
    "Explainer",
    "ExplainerFilter",
}


def test_every_label_and_relationship_is_declared_once() -> None:
    assert {spec.label for spec in NODES} == LABELS
    assert len(NODES) == len(LABELS)
    types = [spec.type for spec in RELATIONSHIPS]
    assert sorted(types) == sorted(
        [
            "HAS_LAYER",
            "HAS_FILTER",
            "HAS_PATTERN",
            "PARENT",
            "FIRES",
            "HAS_TEMPLATE",
            "USES",
            "MATCHES",
            # explainer networks (graphstore.explainers)
            "HAS_EXPLAINER",
            "EXPLAINS",
            "HAS_EXPLAINER_FILTER",
            # derived at write time (graphstore.precompute)
            "RANKED_CHILD",
            "FLAGGED",
            "TOP_PATH",
        ]
    )
    derived = [spec.type for spec in RELATIONSHIPS if spec.derived]
    assert derived == ["RANKED_CHILD", "FLAGGED", "TOP_PATH"]
    for rel in RELATIONSHIPS:
        assert rel.source in LABELS and rel.target in LABELS


def test_relationship_directions_follow_the_design() -> None:
    assert (rel_spec("PARENT").source, rel_spec("PARENT").target) == ("Pattern", "Pattern")
    assert (rel_spec("FIRES").source, rel_spec("FIRES").target) == ("Image", "Pattern")
    assert (rel_spec("USES").source, rel_spec("USES").target) == ("Template", "Pattern")
    assert rel_spec("FIRES").columns[:2] == ("src", "dst")


def test_properties_later_stages_need_are_declared_now() -> None:
    pattern = {p.name: p.type for p in node_spec("Pattern").properties}
    assert pattern["diagnosis"] is PropertyType.STRING
    assert pattern["off_object"] is PropertyType.DOUBLE
    model = {p.name: p.type for p in node_spec("Model").properties}
    assert model["layers"] is PropertyType.STRING_LIST
    assert {"status", "params", "seed", "created", "normalisation"} <= set(model)
    assert "explained_share" in {p.name for p in node_spec("Layer").properties}


def test_only_image_is_shared_between_models() -> None:
    # the Store node (the store's format version) belongs to the store, not to models
    shared = [spec.label for spec in NODES if not spec.has_model_id and spec.label != "Store"]
    assert shared == ["Image"]


def test_a_model_carries_its_format_identity_and_layer_statistics() -> None:
    from graphstore.schema import FORMAT_VERSION

    model = {p.name: p.type for p in node_spec("Model").properties}
    layer = {p.name: p.type for p in node_spec("Layer").properties}
    assert model["format_version"] is PropertyType.INT64 and FORMAT_VERSION >= 2
    assert model["identity"] is PropertyType.STRING
    assert layer["unit_std"] is PropertyType.STRING
    assert layer["filter_peaks"] is PropertyType.STRING
    # older stores gain them by ALTER TABLE
    assert {"format_version", "identity"} <= set(ADDED_PROPERTIES["Model"])
    assert {"unit_std", "filter_peaks"} <= set(ADDED_PROPERTIES["Layer"])
    store = node_spec("Store")
    assert store.key == "store_id" and "format_version" in store.columns


def test_ladybug_ddl_has_one_table_per_declaration_with_its_key() -> None:
    ddl = ladybug_ddl()
    added = [f"ALTER TABLE {label} ADD IF NOT EXISTS {name} " for label, names in
             ADDED_PROPERTIES.items() for name in names]  # fmt: skip
    assert len(ddl) == len(NODES) + len(RELATIONSHIPS) + len(added)
    # properties added after a store was first created reach older stores by ALTER TABLE
    assert [s for s in ddl if s.startswith("ALTER")] == [
        next(s for s in ddl if s.startswith(prefix)) for prefix in added
    ]
    ddl = [s for s in ddl if not s.startswith("ALTER")]
    for spec in NODES:
        [statement] = [s for s in ddl if re.search(rf"TABLE IF NOT EXISTS {spec.label}\(", s)]
        assert statement.startswith("CREATE NODE TABLE IF NOT EXISTS")
        assert f"PRIMARY KEY ({spec.key})" in statement
        for prop in spec.properties:
            assert f"{prop.name} {prop.type.value}" in statement
    # node tables come first: a REL table can only name existing node tables
    kinds = ["NODE" if " NODE " in s else "REL" for s in ddl]
    assert kinds == sorted(kinds, key=lambda k: k == "REL")
    assert "CREATE REL TABLE IF NOT EXISTS PARENT(FROM Pattern TO Pattern, dx DOUBLE" in "\n".join(
        ddl
    )


def test_ladybug_ddl_runs_and_is_idempotent() -> None:
    import ladybug

    connection = ladybug.Connection(ladybug.Database(":memory:"))
    for _ in range(2):
        for statement in ladybug_ddl():
            connection.execute(statement)
    result = connection.execute("CALL show_tables() RETURN name")
    assert isinstance(result, ladybug.QueryResult)
    names = {row[0] for row in result.get_all() if isinstance(row, list)}
    assert names == LABELS | {spec.type for spec in RELATIONSHIPS}


def test_cypher_constraints_are_idempotent_and_cover_every_key() -> None:
    statements = cypher_constraints()
    assert all("IF NOT EXISTS" in s for s in statements)
    for spec in NODES:
        assert any(f"(n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE" in s for s in statements)
    indexed = {re.search(r"\(n:(\w+)\) ON \(n.model_id\)", s) for s in statements} - {None}
    assert {m.group(1) for m in indexed if m} == LABELS - {"Model", "Image", "Store"}


def test_unknown_names_raise_store_error_listing_the_known_ones() -> None:
    with pytest.raises(StoreError, match="Pattern"):
        node_spec("Patern")
    with pytest.raises(StoreError, match="PARENT"):
        rel_spec("PARENTS")
