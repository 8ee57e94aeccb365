"""Explainer nodes in the store (graphstore.explainers) on every engine: written once per layer,
replaced by a second write, owned by their performer model (delete and replace remove them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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


def test_evaluate_stores_a_tiny_explainer_and_the_canned_queries_read_it(tmp_path: Path) -> None:
    from graphstore.testing.synthetic import LayerShape, synthetic_records
    from miner.explainer import ExplainerConfig, explain_layer, save_explainer, synthetic_crops
    from miner.models import load_model
    from miner.models.toy import bundled_checkpoint
    from queries.canned import run_canned
    from tests.helpers.stores import open_store
    from tests.unit.test_explainer_cli import explgraph

    layer = "block4_conv2"
    loaded = load_model(str(bundled_checkpoint()))
    crops = synthetic_crops(24, 0, "train", loaded.input_size)
    trained = explain_layer(loaded, layer, crops, ExplainerConfig(1, 12), options={"filters": 4})
    out = save_explainer(tmp_path / "explainer.pt", trained)
    spec = str(tmp_path / "store")
    shape = (LayerShape(layer, 6, 8.0, 2),)
    performer = synthetic_records("toy", channels=2, layers=shape, n_images=2, fires_per_image=2)
    with open_store(spec) as store:
        store.write_model(performer)
    evaluate = ["--store", spec, "explain-net", "evaluate", str(out), "--n", "24"]
    for _ in range(2):  # the second run replaces the first
        done = explgraph(tmp_path, *evaluate, "--model", "toy")
        assert done.returncode == 0, done.stderr
        assert f"stored: toy/{layer}/explainer" in done.stdout
    with open_store(spec, read_only=True) as store:
        layers = run_canned(store, "explained-layers", {"model": "toy"})
        filters = store.query(
            "MATCH (f:ExplainerFilter) RETURN f.idx AS idx, f.purity AS purity, "
            "f.best_part AS part ORDER BY idx"
        )
        parts = run_canned(store, "explainer-parts", {"model": "toy"})
    assert [(r["layer"], r["control"], r["n_filters"]) for r in layers] == [(layer, False, 4)]
    assert 0.0 <= layers[0]["p_mean"] <= 1.0 and 0.0 <= layers[0]["agreement"] <= 1.0
    assert [r["idx"] for r in filters] == [0, 1, 2, 3]
    assert all(0.0 <= r["purity"] <= 1.0 for r in filters)
    covered = {r["part"] for r in filters} - {"none", "dead"}
    assert {r["part"] for r in parts} == covered
    shown = explgraph(tmp_path, "--store", spec, "show", "toy", "--json")
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)["explainers"]
    assert [(r["layer"], r["p_mean"]) for r in listed] == [(layer, layers[0]["p_mean"])]
    table = explgraph(tmp_path, "--store", spec, "show", "toy")
    assert table.returncode == 0 and "explained layer" in table.stdout, table.stderr
    unknown = explgraph(tmp_path, *evaluate, "--model", "nope")
    assert unknown.returncode == 1 and "no model 'nope'" in unknown.stderr
