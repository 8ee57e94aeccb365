"""The result→rows mapping's pattern ids: the store's scalar ids, in pattern order, unique."""

from __future__ import annotations

from explgraph.workflows.rows import layer_pattern_ids
from graphstore.records import pattern_id
from miner.graph import learn_graph
from tests.unit.test_graph_planted import planted, settings


def test_pattern_ids_are_the_scalar_ids_in_pattern_order() -> None:
    features, _ = planted(4)
    graph = learn_graph(features, settings(iterations=1))
    for lp in graph.layers:
        ids = layer_pattern_ids("m/odd id", lp)
        per_filter = lp.per_filter
        expected = [
            pattern_id("m/odd id", lp.geometry.name, f, k - f * per_filter)
            for k, f in enumerate(lp.filter.tolist())
        ]
        assert per_filter > 1 and list(ids) == expected
        assert len(set(ids)) == lp.num_patterns
