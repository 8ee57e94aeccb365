"""Export round trips: GraphML and JSON read back hold the store's nodes, edges and properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from explgraph.core.errors import UnknownModel
from graphstore import GraphRecords, GraphStore
from queries.export import ExportFormat, export_model, to_networkx
from tests.helpers.cli import run_cli
from tests.helpers.mined import MinedToy
from tests.helpers.stores import open_store


def _aog(model_id: str, patterns: pd.Series) -> dict[str, pd.DataFrame]:
    part = f"{model_id}/part/head"
    template = f"{part}/t0"
    used = patterns.head(3).tolist()
    return {
        "Part": pd.DataFrame({"part_id": [part], "model_id": model_id, "name": "head"}),
        "Template": pd.DataFrame(
            {
                "template_id": [template],
                "model_id": model_id,
                "part": "head",
                "idx": [0],
                "x": [10.0],
                "y": [20.0],
            }
        ),
        "HAS_TEMPLATE": pd.DataFrame({"src": [part], "dst": [template]}),
        "USES": pd.DataFrame(
            {
                "src": [template] * 3,
                "dst": used,
                "dx": [1.0, 2.0, 3.0],
                "dy": [0.0, -1.0, -2.0],
                "weight": [0.5, 0.25, 0.125],
            }
        ),
    }


def _write(store: GraphStore, records: GraphRecords) -> dict[str, pd.DataFrame]:
    store.write_model(records)
    aog = _aog(records.model_id, records.patterns["pattern_id"])
    for name, frame in aog.items():
        if name in ("HAS_TEMPLATE", "USES"):
            store.write_relationships(name, frame)
        else:
            store.write_nodes(name, frame)
    return aog


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, float | np.floating):
        return bool(np.isclose(float(value), float(expected)))
    if isinstance(expected, np.integer):
        return int(value) == int(expected)
    return bool(value == expected)


def _check_nodes(graph: nx.DiGraph, frame: pd.DataFrame, key: str, kind: str) -> None:
    for row in frame.to_dict("records"):
        node = graph.nodes[row[key]]
        assert node["kind"] == kind
        for name, value in row.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert name not in node or node[name] is None
            else:
                assert _same(node[name], value), (kind, name, node[name], value)


def _check_edges(graph: nx.DiGraph, frame: pd.DataFrame, rel_type: str) -> None:
    for row in frame.to_dict("records"):
        edge = graph.edges[row["src"], row["dst"]]
        assert edge["type"] == rel_type
        for name, value in row.items():
            if name not in ("src", "dst"):
                assert _same(edge[name], value), (rel_type, name, edge[name], value)


def test_graphml_round_trip_on_every_engine(
    store: GraphStore, tiny_records: Callable[..., GraphRecords], tmp_path: Path
) -> None:
    records = tiny_records("m1")
    aog = _write(store, records)
    other = tiny_records("m2", seed=1)
    store.write_model(other)  # a second model must stay out of m1's export

    summary = export_model(store, "m1", tmp_path / "m1.graphml", ExportFormat.graphml)
    graph = nx.read_graphml(tmp_path / "m1.graphml")

    images = records.fires["src"].unique()
    hierarchy = records.hierarchy()
    expected_nodes = (
        1 + len(records.layers) + len(records.filters) + len(records.patterns) + len(images) + 2
    )
    expected_edges = (
        sum(len(frame) for frame in hierarchy.values())
        + len(records.parents)
        + len(records.fires)
        + len(aog["HAS_TEMPLATE"])
        + len(aog["USES"])
    )
    assert graph.number_of_nodes() == summary.n_nodes == expected_nodes
    assert graph.number_of_edges() == summary.n_edges == expected_edges
    assert not any(str(node).startswith("m2/") for node in graph.nodes)

    described = store.describe_model("m1")
    model = graph.nodes["m1"]
    assert model["kind"] == "Model" and model["status"] == "complete"
    assert json.loads(model["layers"]) == list(described["layers"])
    assert model["seed"] == described["seed"]
    _check_nodes(graph, records.layers, "layer_id", "Layer")
    _check_nodes(graph, records.filters, "filter_id", "Filter")
    _check_nodes(graph, records.patterns, "pattern_id", "Pattern")
    _check_nodes(
        graph, records.images[records.images["image_id"].isin(images)], "image_id", "Image"
    )
    _check_nodes(graph, aog["Template"], "template_id", "Template")
    _check_edges(graph, records.parents, "PARENT")
    _check_edges(graph, records.fires.assign(model_id="m1"), "FIRES")
    _check_edges(graph, aog["USES"], "USES")
    for rel_type, frame in hierarchy.items():
        _check_edges(graph, frame, rel_type)


def test_to_networkx_keeps_nulls_and_lists(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    records = tiny_records("m1")
    store.write_model(records)
    graph = to_networkx(store, "m1")
    assert isinstance(graph.nodes["m1"]["layers"], list)
    pattern = records.patterns["pattern_id"].iloc[0]
    assert graph.nodes[pattern]["diagnosis"] is None  # declared, never filled in
    with pytest.raises(UnknownModel, match="m1"):
        to_networkx(store, "nope")


def test_json_export_from_the_cli(
    tmp_path: Path, tiny_records: Callable[..., GraphRecords]
) -> None:
    spec = str(tmp_path / "store")
    records = tiny_records("m1")
    with open_store(spec) as store:
        store.write_model(records)
    out = tmp_path / "m1.json"
    result = run_cli("export", "m1", "--format", "json", "--output", out, store=spec)
    graph = nx.node_link_graph(json.loads(out.read_text()), edges="edges")
    assert graph.number_of_edges() == len(records.parents) + len(records.fires) + sum(
        len(f) for f in records.hierarchy().values()
    )
    assert graph.nodes["m1"]["layers"] == ["low", "high"]
    assert f"{graph.number_of_nodes()} nodes" in result.output


def test_mined_graph_counts_match_the_store(mined_toy: MinedToy) -> None:
    with open_store(mined_toy.store_spec, read_only=True) as store:
        described = store.describe_model(mined_toy.model_id)
        images = store.query(
            "MATCH (i:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $m "
            "RETURN count(DISTINCT i.image_id) AS n",
            {"m": mined_toy.model_id},
        )[0]["n"]
        graph = to_networkx(store, mined_toy.model_id)
    kinds = pd.Series([kind for _, kind in graph.nodes(data="kind")]).value_counts()
    assert kinds["Layer"] == described["n_layers"]
    assert kinds["Filter"] == described["n_filters"]
    assert kinds["Pattern"] == described["n_patterns"]
    assert kinds["Image"] == images
    types = pd.Series([t for _, _, t in graph.edges(data="type")]).value_counts()
    assert types["PARENT"] == described["n_parents"]
    assert types["FIRES"] == described["n_fires"]
    assert types["HAS_PATTERN"] == described["n_patterns"]
