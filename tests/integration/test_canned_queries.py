"""Every canned query on every engine, against values computed from the mined graph's records.

The expected values come from the :class:`GraphRecords` of the mined toy graph (rebuilt from the
same cached features and learning checkpoints, so no Cypher is involved), with pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphstore import GraphRecords, GraphStore
from graphstore.explainers import ExplainerRows, write_explainer
from queries.canned import CANNED, run_canned
from tests.helpers.mined import MinedToy
from tests.helpers.stores import open_store
from tests.plugins.stores import ENGINE_PARAMS, empty_bolt_store, server_for

# A small And-Or graph and a few diagnoses written by the fixture, so the AOG and diagnosis
# queries have known answers.
PART = "head"


@pytest.fixture(scope="module")
def records(mined_toy: MinedToy) -> GraphRecords:
    """The mined toy graph as store rows, rebuilt from the cached features and checkpoints."""
    from explgraph.workflows.mine import select_records
    from explgraph.workflows.rows import graph_records
    from miner.graph import GraphSettings
    from miner.mining import mine_graph
    from miner.models import load_model, resolve_layers

    request = mined_toy.request()
    loaded = load_model(request.model, None, device="cpu")
    dataset, chosen = select_records(request)
    settings = GraphSettings.from_dict({**GraphSettings().to_dict(), **request.settings_overrides})
    result = mine_graph(
        loaded,
        chosen,
        resolve_layers(loaded, None),
        settings=settings,
        cache_dir=Path(request.cache_dir),
        device="cpu",
    )
    return graph_records(result, mined_toy.model_id, dataset=dataset.name)


def aog_frames(records: GraphRecords) -> dict[str, pd.DataFrame]:
    """Part / Template / HAS_TEMPLATE / USES rows over a few top-layer patterns."""
    model_id = records.model_id
    part_id = f"{model_id}/part/{PART}"
    top = records.patterns[records.patterns["layer"] == records.layers["name"].iloc[-1]]
    used = top.sort_values("pattern_id").head(6)["pattern_id"].tolist()
    templates = [f"{part_id}/t0", f"{part_id}/t1"]
    return {
        "Part": pd.DataFrame({"part_id": [part_id], "model_id": model_id, "name": PART}),
        "Template": pd.DataFrame(
            {"template_id": templates, "model_id": model_id, "part": PART, "idx": [0, 1]}
        ),
        "HAS_TEMPLATE": pd.DataFrame({"src": [part_id, part_id], "dst": templates}),
        "USES": pd.DataFrame(
            {
                "src": [templates[0]] * 4 + [templates[1]] * 2,
                "dst": used,
                "dx": np.arange(6, dtype=np.float64),
                "dy": -np.arange(6, dtype=np.float64),
                "weight": np.linspace(1.0, 0.5, 6),
            }
        ),
    }


def diagnosis_frame(records: GraphRecords) -> pd.DataFrame:
    """Verdicts for the first five patterns; every other pattern keeps a null diagnosis."""
    ids = records.patterns["pattern_id"].head(5).tolist()
    return pd.DataFrame(
        {
            "pattern_id": ids,
            "diagnosis": ["background", "ok", "unstable", "background", "background+unstable"],
            "off_object": [0.9, 0.1, 0.2, 0.7, 0.8],
        }
    )


# The explainers the fixture writes: (layer index, control, p_mean, error, agreement, parts of
# the filters, their purities). 'none' and 'dead' filters cover no part.
EXPLAINED = (
    (
        0,
        False,
        0.8,
        0.05,
        0.99,
        ["head", "tail", "head", "none", "dead"],
        [0.9, 0.7, 0.5, 0.2, 0.0],
    ),
    (-1, True, 0.6, 0.10, 0.97, ["tail", "tail", "beak"], [0.4, 0.8, 0.3]),
)


def explainer_rows(records: GraphRecords, stale: bool = False) -> list[ExplainerRows]:
    """The store rows of :data:`EXPLAINED`; ``stale``: other figures and more filters, written
    first so the fixture's second write must replace them."""
    rows = []
    for layer, control, p_mean, error, agreement, parts, purity in EXPLAINED:
        if stale:
            p_mean, parts, purity = 0.1, [*parts, "wing", "wing"], [*purity, 0.9, 0.9]
        node = {
            "model_id": records.model_id,
            "layer": str(records.layers["name"].iloc[layer]),
            "control": control,
            "n_filters": len(parts),
            "p_mean": p_mean,
            "p_q50": p_mean + 0.01,
            "reconstruction_error": error,
            "agreement": agreement,
            "mean_purity": float(np.mean(purity)),
        }
        filters = pd.DataFrame({"idx": range(len(parts)), "purity": purity, "best_part": parts})
        rows.append(ExplainerRows(node, filters))
    return rows


@pytest.fixture(scope="module", params=ENGINE_PARAMS)
def engine_store(
    request: pytest.FixtureRequest,
    mined_toy: MinedToy,
    records: GraphRecords,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GraphStore]:
    """The mined toy graph plus a small AOG and a few diagnoses, on each engine in turn."""
    if request.param == "ladybug":
        store = open_store(mined_toy.copy_store(tmp_path_factory.mktemp("canned") / "store"))
    else:
        store = empty_bolt_store(server_for(request, request.param))
        store.write_model(records)
    for name, frame in aog_frames(records).items():
        if name in ("HAS_TEMPLATE", "USES"):
            store.write_relationships(name, frame)
        else:
            store.write_nodes(name, frame)
    store.write_nodes("Pattern", diagnosis_frame(records))
    for stale in (True, False):
        for rows in explainer_rows(records, stale):
            write_explainer(store, rows)
    try:
        yield store
    finally:
        store.close()


def _layer_of(records: GraphRecords) -> pd.Series:
    return records.patterns.set_index("pattern_id")["layer"]


def test_every_canned_query_is_documented() -> None:
    for query in CANNED.values():
        assert query.summary and query.cypher
        assert all(param.help for param in query.params)


def test_models_counts(engine_store: GraphStore, records: GraphRecords) -> None:
    rows = run_canned(engine_store, "models")
    assert len(rows) == 1
    row = rows[0]
    assert row["model_id"] == records.model_id
    assert row["status"] == "complete"
    assert row["layers"] == len(records.layers)
    assert row["filters"] == len(records.filters)
    assert row["patterns"] == len(records.patterns)
    assert row["parents"] == len(records.parents)
    assert row["fires"] == len(records.fires)


def test_filter_patterns(engine_store: GraphStore, records: GraphRecords) -> None:
    layer = records.layers["name"].iloc[-1]
    mine = records.patterns[
        (records.patterns["layer"] == layer) & (records.patterns["filter"] == 3)
    ]
    rows = run_canned(
        engine_store, "filter-patterns", {"model": records.model_id, "layer": layer, "filter": 3}
    )
    assert len(rows) == len(mine) > 0
    assert {r["pattern_id"] for r in rows} == set(mine["pattern_id"])
    scores = [r["mean_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    expected = mine.set_index("pattern_id")
    for row in rows:
        assert row["x"] == pytest.approx(expected.loc[row["pattern_id"], "x"])
        assert row["sigma"] == pytest.approx(expected.loc[row["pattern_id"], "sigma"])


def test_busy_filters(engine_store: GraphStore, records: GraphRecords) -> None:
    cell, min_score = 16.0, float(records.patterns["mean_score"].median())
    p = records.patterns[records.patterns["mean_score"] >= min_score]
    key = np.floor(p["x"] / cell) * 1e6 + np.floor(p["y"] / cell)
    expected = (
        p.assign(key=key)
        .groupby(["layer", "filter"])
        .agg(n_distinct=("key", "nunique"), active=("pattern_id", "count"))
        .reset_index()
        .sort_values(
            ["n_distinct", "active", "layer", "filter"], ascending=[False, False, True, True]
        )
        .head(5)
    )
    rows = run_canned(
        engine_store,
        "busy-filters",
        {"model": records.model_id, "cell": cell, "min_score": min_score, "limit": 5},
    )
    got = [(r["layer"], r["filter"], r["n_distinct"], r["active"]) for r in rows]
    assert got == [tuple(v) for v in expected[["layer", "filter", "n_distinct", "active"]].values]
    # a filter's distinct count never exceeds its active patterns
    assert all(r["n_distinct"] <= r["active"] for r in rows)


def test_busy_filters_of_one_layer(engine_store: GraphStore, records: GraphRecords) -> None:
    layer = records.layers["name"].iloc[0]
    rows = run_canned(
        engine_store, "busy-filters", {"model": records.model_id, "layer": layer, "limit": 1000}
    )
    assert {r["layer"] for r in rows} == {layer}
    per_filter = records.patterns[records.patterns["layer"] == layer].groupby("filter").size()
    assert {r["filter"]: r["active"] for r in rows} == per_filter.to_dict()


def test_pattern_relations(engine_store: GraphStore, records: GraphRecords) -> None:
    middle = records.layers["name"].iloc[1]
    edges = records.parents
    layer = _layer_of(records)
    candidates = edges[edges["dst"].map(layer) == middle]["dst"]
    pattern = candidates.value_counts().index[0]  # a middle pattern with children and parents
    rows = run_canned(engine_store, "pattern-relations", {"pattern": pattern})
    parents = edges[edges["src"] == pattern]
    children = edges[edges["dst"] == pattern]
    assert len(parents) > 0 and len(children) > 0
    got = {(r["relation"], r["other"]): r for r in rows}
    expected = {
        ("parent", d): row for d, row in zip(parents["dst"], parents.itertuples(), strict=True)
    }
    expected |= {
        ("child", s): row for s, row in zip(children["src"], children.itertuples(), strict=True)
    }
    assert set(got) == set(expected)
    for key, row in got.items():
        assert row["dx"] == pytest.approx(expected[key].dx)
        assert row["weight"] == pytest.approx(expected[key].weight)
    # one order on every engine: parents first, then children, each strongest first
    order = [(r["relation"] != "parent", -r["weight"], r["other"]) for r in rows]
    assert order == sorted(order)


def test_strongest_relations(engine_store: GraphStore, records: GraphRecords) -> None:
    layer = records.layers["name"].iloc[0]
    edges = records.parents[records.parents["src"].map(_layer_of(records)) == layer]
    expected = edges.sort_values(["weight", "src", "dst"], ascending=[False, True, True]).head(7)
    rows = run_canned(
        engine_store, "strongest-relations", {"model": records.model_id, "layer": layer, "limit": 7}
    )
    assert [(r["child"], r["parent"]) for r in rows] == list(
        zip(expected["src"], expected["dst"], strict=True)
    )
    assert [r["weight"] for r in rows] == pytest.approx(expected["weight"].tolist())


def test_strongest_relations_beyond_the_ranked_children(
    engine_store: GraphStore, records: GraphRecords
) -> None:
    """A limit above the RANKED_CHILD edges kept per layer is computed from the PARENT edges:
    the same order and weights as the edges themselves give."""
    from graphstore.schema import RANKED_CHILDREN_PER_LAYER

    layer = records.layers["name"].iloc[0]
    limit = RANKED_CHILDREN_PER_LAYER + 5
    assert CANNED["strongest-relations"].general is not None
    edges = records.parents[records.parents["src"].map(_layer_of(records)) == layer]
    assert len(edges) > limit  # the toy layer has more edges than the ranked children hold
    expected = edges.sort_values(["weight", "src", "dst"], ascending=[False, True, True])
    rows = run_canned(
        engine_store,
        "strongest-relations",
        {"model": records.model_id, "layer": layer, "limit": limit},
    )
    assert [(r["child"], r["parent"]) for r in rows] == list(
        zip(expected["src"].head(limit), expected["dst"].head(limit), strict=True)
    )
    ranked = engine_store.query(
        "MATCH (l:Layer)-[e:RANKED_CHILD]->(:Pattern) WHERE l.model_id = $model "
        "RETURN l.name AS layer, count(e) AS n, max(e.rank) AS most",
        {"model": records.model_id},
    )
    assert ranked and all(int(r["n"]) <= RANKED_CHILDREN_PER_LAYER for r in ranked)


def test_pattern_top_images(engine_store: GraphStore, records: GraphRecords) -> None:
    pattern = records.fires["dst"].value_counts().index[0]
    mine = records.fires[records.fires["dst"] == pattern]
    expected = mine.sort_values(["score", "src"], ascending=[False, True]).head(4)
    rows = run_canned(engine_store, "pattern-top-images", {"pattern": pattern, "limit": 4})
    assert [r["image_id"] for r in rows] == expected["src"].tolist()
    assert [r["score"] for r in rows] == pytest.approx(expected["score"].tolist())
    assert [r["x"] for r in rows] == pytest.approx(expected["x"].tolist())


def test_image_patterns(engine_store: GraphStore, records: GraphRecords) -> None:
    image = records.images["image_id"].iloc[0]
    path = records.images["path"].iloc[0]
    mine = records.fires[(records.fires["src"] == image) & (records.fires["rank"] < 3)]
    expected = {
        (_layer_of(records)[d], d, int(r)) for d, r in zip(mine["dst"], mine["rank"], strict=True)
    }
    by_id = run_canned(
        engine_store, "image-patterns", {"model": records.model_id, "image": image, "top": 3}
    )
    assert {(r["layer"], r["pattern_id"], r["rank"]) for r in by_id} == expected
    by_path = run_canned(
        engine_store, "image-patterns", {"model": records.model_id, "image": path, "top": 3}
    )
    assert len(by_path) == len(by_id) == 3 * len(records.layers)
    top_layer = records.layers["name"].iloc[-1]
    one_layer = run_canned(
        engine_store,
        "image-patterns",
        {"model": records.model_id, "image": image, "top": 3, "layer": top_layer},
    )
    assert {r["layer"] for r in one_layer} == {top_layer} and len(one_layer) == 3


def _all_paths(records: GraphRecords, pattern: str) -> list[tuple[float, list[str]]]:
    """Brute force: every PARENT path from ``pattern`` to a pattern without parents."""
    up = records.parents.groupby("src")

    def walk(node: str) -> list[tuple[float, list[str]]]:
        if node not in up.groups:
            return [(0.0, [node])]
        edges = up.get_group(node)
        return [
            (float(weight) + total, [node, *rest])
            for parent, weight in zip(edges["dst"], edges["weight"], strict=True)
            for total, rest in walk(parent)
        ]

    return sorted(walk(pattern), key=lambda item: -item[0])


def test_path_to_top(engine_store: GraphStore, records: GraphRecords) -> None:
    names = records.layers.sort_values("depth")["name"].tolist()
    bottom = records.parents[records.parents["src"].map(_layer_of(records)) == names[0]]
    layer = _layer_of(records)
    for pattern in bottom["src"].drop_duplicates().head(3):
        expected = _all_paths(records, pattern)
        for limit in (2, 5):
            rows = run_canned(engine_store, "path-to-top", {"pattern": pattern, "limit": limit})
            best = expected[:limit]
            assert [r["weight"] for r in rows] == pytest.approx([w for w, _ in best])
            # mined weights are floats without ties: the paths themselves agree
            assert [r["patterns"] for r in rows] == [nodes for _, nodes in best]
            assert [r["layers"] for r in rows] == [[layer[n] for n in nodes] for _, nodes in best]
    top = records.patterns["pattern_id"][layer.values == names[-1]].iloc[0]
    assert run_canned(engine_store, "path-to-top", {"pattern": top}) == []


def test_busy_filters_at_the_default_grid_match_the_aggregation(
    engine_store: GraphStore, records: GraphRecords
) -> None:
    """The per-filter figures fixed at write time give what the aggregation gives."""
    query = CANNED["busy-filters"]
    p = records.patterns[records.patterns["mean_score"] >= 0.0]
    key = np.floor(p["x"] / 8.0) * 1e6 + np.floor(p["y"] / 8.0)
    expected = (
        p.assign(key=key)
        .groupby(["layer", "filter"])
        .agg(
            n_distinct=("key", "nunique"),
            active=("pattern_id", "count"),
            mean_score=("mean_score", "mean"),
        )
        .reset_index()
        .sort_values(
            ["n_distinct", "active", "layer", "filter"], ascending=[False, False, True, True]
        )
        .head(7)
    )
    params = {"model": records.model_id, "limit": 7}
    assert query.reads_precomputed(query.bind(params))
    rows = run_canned(engine_store, "busy-filters", params)
    got = [(r["layer"], r["filter"], r["n_distinct"], r["active"]) for r in rows]
    assert got == [tuple(v) for v in expected[["layer", "filter", "n_distinct", "active"]].values]
    assert [r["mean_score"] for r in rows] == pytest.approx(expected["mean_score"].tolist())
    # the general aggregation, asked for the same grid in other words, agrees
    general = engine_store.query(query.general.text_for(engine_store.engine), query.bind(params))
    assert [(r["layer"], r["filter"], r["n_distinct"], r["active"]) for r in general] == got


def test_part_patterns(engine_store: GraphStore, records: GraphRecords) -> None:
    uses = aog_frames(records)["USES"]
    rows = run_canned(engine_store, "part-patterns", {"model": records.model_id, "part": PART})
    assert [(r["template"], r["pattern_id"]) for r in rows] == [
        (int(src[-1]), dst) for src, dst in zip(uses["src"], uses["dst"], strict=True)
    ]
    assert [r["dx"] for r in rows] == pytest.approx(uses["dx"].tolist())
    assert run_canned(engine_store, "part-patterns", {"model": records.model_id, "part": "x"}) == []


def test_diagnosed_patterns(engine_store: GraphStore, records: GraphRecords) -> None:
    verdicts = diagnosis_frame(records)
    flawed = verdicts[verdicts["diagnosis"] != "ok"].sort_values("off_object", ascending=False)
    rows = run_canned(engine_store, "diagnosed-patterns", {"model": records.model_id})
    assert [r["pattern_id"] for r in rows] == flawed["pattern_id"].tolist()
    only = run_canned(
        engine_store,
        "diagnosed-patterns",
        {"model": records.model_id, "diagnosis": "background"},
    )
    background = verdicts[verdicts["diagnosis"] == "background"]
    assert {r["pattern_id"] for r in only} == set(background["pattern_id"])
    expected = background.set_index("pattern_id")["off_object"]
    assert all(math.isclose(r["off_object"], expected[r["pattern_id"]]) for r in only)


def test_explained_layers(engine_store: GraphStore, records: GraphRecords) -> None:
    names = records.layers["name"].tolist()
    rows = run_canned(engine_store, "explained-layers", {"model": records.model_id})
    # one row per explainer, the stale first write replaced; in layer depth order
    assert [(r["layer"], r["control"]) for r in rows] == [(names[0], False), (names[-1], True)]
    for row, (_, _, p_mean, error, agreement, parts, purity) in zip(rows, EXPLAINED, strict=True):
        assert row["model"] == records.model_id
        assert row["p_mean"] == pytest.approx(p_mean)
        assert row["p_median"] == pytest.approx(p_mean + 0.01)
        assert row["reconstruction_error"] == pytest.approx(error)
        assert row["agreement"] == pytest.approx(agreement)
        assert row["mean_purity"] == pytest.approx(float(np.mean(purity)))
        assert row["n_filters"] == len(parts)
    every = run_canned(engine_store, "explained-layers", {})
    assert [r["layer"] for r in every if r["model"] == records.model_id] == [names[0], names[-1]]


def test_explainer_parts(engine_store: GraphStore, records: GraphRecords) -> None:
    names = records.layers["name"].tolist()
    rows = run_canned(engine_store, "explainer-parts", {"model": records.model_id})
    got = [
        (r["layer"], r["control"], r["part"], r["n_filters"], sorted(r["filters"])) for r in rows
    ]
    assert got == [
        (names[0], False, "head", 2, [0, 2]),
        (names[0], False, "tail", 1, [1]),
        (names[-1], True, "tail", 2, [0, 1]),
        (names[-1], True, "beak", 1, [2]),
    ]
    assert rows[0]["mean_purity"] == pytest.approx(0.7)
    assert rows[0]["best_purity"] == pytest.approx(0.9)
    pure = run_canned(
        engine_store,
        "explainer-parts",
        {"model": records.model_id, "layer": names[-1], "min_purity": 0.35},
    )
    assert [(r["part"], sorted(r["filters"])) for r in pure] == [("tail", [0, 1])]
