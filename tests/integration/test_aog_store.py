"""An And-Or graph written into and read back from every store engine, and the statements it is
built from (the algorithms themselves are tested on one engine: ``test_aog_toy.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import pytest

from explgraph.core.errors import StoreError
from graphstore import GraphRecords, GraphStore
from queries.aog.model import AndOrGraph, TemplateInfo, list_parts, load_aog, remove_aog, write_aog
from queries.aog.retrieve import candidate_firings, parent_links, pattern_rows, shot_firings
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
    uses = store.query(
        "MATCH (a:Part)-[:HAS_TEMPLATE]->(t:Template)-[u:USES]->(p:Pattern) "
        "WHERE a.model_id = $m RETURN count(u) AS c",
        {"m": "m1"},
    )
    assert int(uses[0]["c"]) == len(aog.uses)
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


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_the_statements_an_aog_is_built_from_on_every_engine(
    store: GraphStore, tiny_records: Callable[..., GraphRecords]
) -> None:
    """``queries.aog.retrieve``: what building and locating read, equal to the records."""
    records = tiny_records("m1")
    store.write_model(records)
    store.write_model(tiny_records("m2", seed=0))  # the same images, fired by another model
    fires = records.fires.merge(records.images, left_on="src", right_on="image_id")
    fires = fires.merge(records.patterns, left_on="dst", right_on="pattern_id")
    images = sorted(records.images["image_id"])[:2]

    shots = shot_firings(store, "m1", [*images, "not-mined"])
    want = fires[fires["image_id"].isin(images)]
    columns = ["image_id", "pattern_id", "layer", "idx", "x_x", "y_x", "score"]
    want = want[columns].set_axis([*columns[:4], "x", "y", "score"], axis=1)
    pd.testing.assert_frame_equal(
        _sorted(shots, ["image_id", "pattern_id"]), _sorted(want, ["image_id", "pattern_id"]),
        check_dtype=False,
    )  # fmt: skip
    assert shot_firings(store, "m1", []).empty

    high = records.patterns[records.patterns["layer"] == "high"]
    rows = pattern_rows(store, "m1", "high", [int(i) for i in high["idx"]] + [999])
    want_rows = high[["idx", "pattern_id", "sigma", "mean_score"]]
    pd.testing.assert_frame_equal(
        _sorted(rows, ["idx"]), _sorted(want_rows, ["idx"]), check_dtype=False
    )

    chosen = list(high["pattern_id"])
    candidates = candidate_firings(store, "m1", chosen)
    want = fires[fires["pattern_id"].isin(chosen)]
    columns = ["pattern_id", "image_id", "path", "width", "height", "x_x", "y_x", "score"]
    want = want[columns].set_axis([*columns[:5], "x", "y", "score"], axis=1)
    pd.testing.assert_frame_equal(
        _sorted(candidates, ["pattern_id", "image_id"]),
        _sorted(want, ["pattern_id", "image_id"]),
        check_dtype=False,
    )

    ends = list(records.parents["src"].head(4)) + list(records.parents["dst"].head(4))
    links = parent_links(store, ends)
    parents = records.parents[records.parents["src"].isin(ends) & records.parents["dst"].isin(ends)]
    want = parents[["src", "dst", "dx", "dy", "weight"]].set_axis(
        ["child", "parent", "dx", "dy", "weight"], axis=1
    )
    pd.testing.assert_frame_equal(
        _sorted(links, ["child", "parent"]), _sorted(want, ["child", "parent"]), check_dtype=False
    )
    assert len(links) > 0
