"""Explainer nodes in the store (graphstore.explainers) on every engine: written once per layer,
replaced by a second write, owned by their performer model (delete and replace remove them)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from explgraph.core.errors import InputError, UnknownModel
from graphstore import GraphRecords, GraphStore
from graphstore.explainers import ExplainerRows, explainer_id, write_explainer


def _rows(records: GraphRecords, parts: list[str], p_mean: float = 0.7) -> ExplainerRows:
    node = {
        "model_id": records.model_id,
        "layer": str(records.layers["name"].iloc[0]),
        "control": False,
        "p_mean": p_mean,
        "agreement": 0.99,
    }
    purity = [0.5 + 0.1 * i for i in range(len(parts))]
    filters = pd.DataFrame({"idx": range(len(parts)), "purity": purity, "best_part": parts})
    return ExplainerRows(node, filters)


def _count(store: GraphStore, label: str, model_id: str) -> int:
    rows = store.query(
        f"MATCH (n:{label}) WHERE n.model_id = $m RETURN count(n) AS c", {"m": model_id}
    )
    return int(rows[0]["c"])


def _stored(store: GraphStore, model_id: str) -> list[tuple[str, float, str, int]]:
    return [
        (r["layer"], r["p"], r["part"], r["idx"])
        for r in store.query(
            "MATCH (m:Model {model_id: $m})-[:HAS_EXPLAINER]->(e:Explainer)-[:EXPLAINS]->"
            "(l:Layer) MATCH (e)-[:HAS_EXPLAINER_FILTER]->(f:ExplainerFilter) "
            "RETURN l.name AS layer, e.p_mean AS p, f.best_part AS part, f.idx AS idx "
            "ORDER BY idx",
            {"m": model_id},
        )
    ]


def test_an_explainer_is_written_linked_and_replaced(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    records = tiny_records("perf")
    store.write_model(records)
    layer = str(records.layers["name"].iloc[0])
    first = write_explainer(store, _rows(records, ["head", "tail", "wing"]))
    assert first == explainer_id("perf", layer)
    assert _stored(store, "perf") == [
        (layer, pytest.approx(0.7), "head", 0),
        (layer, pytest.approx(0.7), "tail", 1),
        (layer, pytest.approx(0.7), "wing", 2),
    ]
    # the same explainer again: replaced, not added to (fewer filters, new figures)
    assert write_explainer(store, _rows(records, ["beak"], p_mean=0.4)) == first
    assert _stored(store, "perf") == [(layer, pytest.approx(0.4), "beak", 0)]
    assert _count(store, "Explainer", "perf") == 1
    assert _count(store, "ExplainerFilter", "perf") == 1


def test_deleting_or_replacing_the_model_removes_its_explainers(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    kept, gone = tiny_records("kept"), tiny_records("gone")
    for records in (kept, gone):
        store.write_model(records)
        write_explainer(store, _rows(records, ["head", "tail"]))
    store.delete_model("gone")
    assert _count(store, "Explainer", "gone") == 0
    assert _count(store, "ExplainerFilter", "gone") == 0
    assert _count(store, "ExplainerFilter", "kept") == 2
    store.write_model(kept)  # a replacement of the performer
    assert _count(store, "Explainer", "kept") == 0
    assert _count(store, "ExplainerFilter", "kept") == 0
    assert store.garbage()["orphans"] == {}


def test_an_explainer_of_an_unknown_model_or_layer_is_refused(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    records = tiny_records("perf")
    with pytest.raises(UnknownModel, match="no model 'perf'"):
        write_explainer(store, _rows(records, ["head"]))
    store.write_model(records)
    rows = _rows(records, ["head"])
    wrong = ExplainerRows({**rows.explainer, "layer": "no_such_layer"}, rows.filters)
    with pytest.raises(InputError, match="no stored layer 'no_such_layer'"):
        write_explainer(store, wrong)
    assert _count(store, "Explainer", "perf") == 0
