"""An And-Or graph written into and read back from every store engine."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pytest

from explgraph.core.errors import StoreError
from graphstore import GraphRecords, GraphStore
from queries.aog.model import AndOrGraph, TemplateInfo, list_parts, load_aog, remove_aog, write_aog
from queries.aog.select import SelectionSettings


def _aog(records: GraphRecords, part: str = "head") -> AndOrGraph:
    ids = records.patterns["pattern_id"].tolist()
    layers = records.patterns["layer"].tolist()
    idx = records.patterns["idx"].tolist()
    uses = pd.DataFrame(
        {
            "template": [0, 0, 1],
            "pattern_id": ids[:2] + ids[-1:],
            "layer": layers[:2] + layers[-1:],
            "idx": idx[:2] + idx[-1:],
            "dx": [1.5, -2.0, 3.25],
            "dy": [0.5, 4.0, -1.0],
            "weight": [0.75, 0.25, 1.0],
        }
    )
    templates = [
        TemplateInfo(0, "img-a", "/a.png", 10.0, 20.0, cuts=[{"layer": "low", "kept": 2}]),
        TemplateInfo(1, "img-b", "/b.png", 30.0, 5.0, flipped=True),
    ]
    return AndOrGraph("m1", part, 96, SelectionSettings(radius=0.4), templates, uses, "shots.json")


def test_aog_round_trip_and_replace(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    records = tiny_records("m1")
    store.write_model(records)
    aog = _aog(records)
    write_aog(store, aog)
    write_aog(store, aog)  # rebuilding replaces, never duplicates

    back = load_aog(store, "m1", "head")
    assert back.settings == aog.settings and back.input_size == 96
    assert back.source == "shots.json"
    assert [(t.index, t.x, t.y, t.flipped) for t in back.templates] == [
        (0, 10.0, 20.0, False),
        (1, 30.0, 5.0, True),
    ]
    assert back.templates[0].cuts == [{"layer": "low", "kept": 2}]
    mine = aog.uses.sort_values(["template", "pattern_id"]).reset_index(drop=True)
    theirs = back.uses.sort_values(["template", "pattern_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    counts = store.query(
        "MATCH (a:Part)-[:HAS_TEMPLATE]->(t:Template) WHERE a.model_id = $m "
        "RETURN t.template_id AS id, t.n_patterns AS n ORDER BY id",
        {"m": "m1"},
    )
    assert [(r["id"], r["n"]) for r in counts] == [("m1/part/head/t0", 2), ("m1/part/head/t1", 1)]
    part = store.query("MATCH (a:Part) RETURN a.source AS s")
    assert json.loads(part[0]["s"])["settings"]["radius"] == 0.4

    write_aog(store, _aog(records, "tail"))
    assert list_parts(store, "m1") == ["head", "tail"]
    remove_aog(store, "m1", "head")
    assert list_parts(store, "m1") == ["tail"]
    with pytest.raises(StoreError, match="parts with one: tail"):
        load_aog(store, "m1", "head")
    left = store.query("MATCH (t:Template) WHERE t.part = 'head' RETURN count(t) AS c")
    assert int(left[0]["c"]) == 0
