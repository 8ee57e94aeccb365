"""GraphRecords: validation, derived hierarchy, Arrow conversion; the synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from explgraph.core.errors import StoreError
from graphstore.records import (
    GraphRecords,
    filter_id,
    layer_id,
    node_table,
    pattern_id,
    pattern_ids,
    rel_table,
)
from graphstore.testing.synthetic import LayerShape, synthetic_records

LAYERS = (LayerShape("a", 4, 8.0, 2), LayerShape("b", 2, 16.0, 2))


@pytest.fixture
def records() -> GraphRecords:
    return synthetic_records(
        "m", channels=2, layers=LAYERS, parents_per_pattern=2, n_images=3, fires_per_image=2
    )


def test_synthetic_vgg_sizes_match_the_benchmark_spec() -> None:
    small = synthetic_records("v", channels=8, n_images=5, fires_per_image=7)
    assert len(small.patterns) == 8 * (40 + 40 + 20 + 20)
    assert len(small.parents) == 18 * 8 * (40 + 40 + 20)  # every pattern below the top
    assert len(small.fires) == 35
    assert not small.parents.duplicated(["src", "dst"]).any()
    assert not small.fires.duplicated(["src", "dst"]).any()
    # at full size: 512 filters -> 61,440 patterns and 921,600 PARENT edges
    assert 512 * 120 == 61_440 and 18 * 512 * 100 == 921_600


def test_id_helpers_prefix_the_model_id() -> None:
    assert layer_id("m", "conv5_3") == "m/conv5_3"
    assert filter_id("m", "conv5_3", 7) == "m/conv5_3/f7"
    assert pattern_id("m", "conv5_3", 7, 2) == "m/conv5_3/f7/p2"


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_vectorised_pattern_ids_equal_the_scalar_builder(dtype: type) -> None:
    filters: np.ndarray = np.array([0, 3, 3, 12, 511], dtype=dtype)
    within: np.ndarray = np.array([0, 0, 1, 9, 10], dtype=dtype)
    ids = pattern_ids("vgg16/a", "conv5_3", filters, within)
    pairs = zip(filters.tolist(), within.tolist(), strict=True)
    expected = [pattern_id("vgg16/a", "conv5_3", f, p) for f, p in pairs]
    assert ids.dtype == object and ids.shape == (5,)
    assert ids.tolist() == expected
    assert all(type(value) is str for value in ids)


def test_vectorised_pattern_ids_of_no_patterns_are_empty() -> None:
    empty = np.array([], dtype=np.int64)
    assert pattern_ids("m", "conv1", empty, empty).tolist() == []


def test_valid_records_pass(records: GraphRecords) -> None:
    records.validate()


def test_hierarchy_links_every_layer_filter_and_pattern(records: GraphRecords) -> None:
    hierarchy = records.hierarchy()
    assert set(hierarchy["HAS_LAYER"]["dst"]) == set(records.layers["layer_id"])
    assert set(hierarchy["HAS_FILTER"]["dst"]) == set(records.filters["filter_id"])
    assert sorted(hierarchy["HAS_PATTERN"]["dst"]) == sorted(records.patterns["pattern_id"])
    edge = hierarchy["HAS_PATTERN"].set_index("dst").loc["m/b/f1/p0", "src"]
    assert edge == "m/b/f1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.patterns.drop(columns=["layer"], inplace=True), "lacks column"),
        (lambda r: r.patterns.insert(0, "colour", 1), "does not declare"),
        (lambda r: r.parents.loc.__setitem__((0, "dst"), "m/zz"), "unknown pattern id 'm/zz'"),
        (lambda r: r.fires.loc.__setitem__((0, "src"), "nope"), "unknown image id 'nope'"),
        (lambda r: r.filters.loc.__setitem__((0, "layer"), "c"), "unknown layer name 'c'"),
        (lambda r: r.patterns.loc.__setitem__((1, "pattern_id"), "m/a/f0/p0"), "repeats"),
        (lambda r: r.layers.loc.__setitem__((0, "layer_id"), "other/a"), "does not start"),
        (lambda r: r.layers.loc.__setitem__((0, "layer_id"), "m0/a"), "does not start"),
        (lambda r: r.layers.loc.__setitem__((0, "model_id"), "other"), "rows of model"),
        (lambda r: r.patterns.loc.__setitem__((0, "filter"), 9), "lacks: add the filter"),
        (lambda r: r.model.__setitem__("colour", "red"), "unknown properties"),
        (lambda r: r.model.pop("model_id"), "model_id"),
    ],
)
def test_invalid_records_raise_store_error(records: GraphRecords, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    mutate(records)
    with pytest.raises(StoreError, match=message):
        records.validate()


def test_model_frame_serialises_params_and_sets_status(records: GraphRecords) -> None:
    records.model["params"] = {"density": 0.05, "layers": ["a", "b"]}
    frame = records.model_frame("mining")
    assert frame.loc[0, "status"] == "mining"
    assert frame.loc[0, "created"] == "1970-01-01T00:00:00+00:00"  # given, so kept
    records.model.pop("created")
    assert str(records.model_frame("complete").loc[0, "created"]).startswith("20")
    assert frame.loc[0, "params"] == '{"density": 0.05, "layers": ["a", "b"]}'
    table = node_table("Model", frame)
    assert table.schema.field("layers").type == pa.list_(pa.string())
    assert table.column("layers").to_pylist() == [["a", "b"]]


def test_arrow_tables_follow_the_schema_and_keep_nulls() -> None:
    frame = pd.DataFrame(
        {"pattern_id": ["p1", "p2"], "idx": [1.0, np.nan], "diagnosis": [None, "ok"]}
    )
    table = node_table("Pattern", frame)
    assert table.column_names[0] == "pattern_id"
    assert table.schema.field("idx").type == pa.int64()
    assert table.column("idx").to_pylist() == [1, None]
    assert table.column("diagnosis").to_pylist() == [None, "ok"]
    assert table.column("sigma").null_count == 2  # absent column -> all null
    rels = rel_table("MATCHES", pd.DataFrame({"src": ["a"], "dst": ["b"], "similarity": [0.5]}))
    assert rels.column_names == ["src", "dst", "similarity"]


def test_arrow_conversion_refuses_undeclared_columns() -> None:
    with pytest.raises(StoreError, match="does not declare"):
        node_table("Image", pd.DataFrame({"image_id": ["i"], "colour": ["red"]}))
    with pytest.raises(StoreError, match="'src' and 'dst'"):
        rel_table("PARENT", pd.DataFrame({"src": ["a"]}))
