"""The write-time answers of graphstore.precompute against brute force on small graphs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explgraph.core.errors import StoreError
from graphstore.precompute import (
    ranked_children,
    top_paths,
    with_best_parent,
    with_busy_summaries,
)
from graphstore.records import GraphRecords
from graphstore.schema import PATH_SEPARATOR
from graphstore.testing.synthetic import LayerShape, synthetic_records

LAYERS = (
    LayerShape("a", 4, 8.0, 3),
    LayerShape("b", 4, 8.0, 3),
    LayerShape("c", 2, 16.0, 2),
    LayerShape("d", 2, 16.0, 2),
)


def _records(**changes: object) -> GraphRecords:
    return synthetic_records(
        "m", channels=3, layers=LAYERS, parents_per_pattern=3, n_images=2, **changes
    )


def _all_paths(records: GraphRecords) -> dict[str, list[tuple[float, list[str]]]]:
    """Every PARENT path from every pattern up to a pattern without parents, by recursion."""
    up: dict[str, list[tuple[str, float]]] = {}
    for src, dst, weight in records.parents[["src", "dst", "weight"]].itertuples(index=False):
        up.setdefault(src, []).append((dst, float(weight)))

    def walk(node: str) -> list[tuple[list[float], list[str]]]:
        if node not in up:
            return [([], [node])]
        return [
            ([weight, *weights], [node, *rest])
            for parent, weight in up[node]
            for weights, rest in walk(parent)
        ]

    found = {}
    for pid in records.patterns["pattern_id"]:
        if pid in up:
            # summed from the pattern upward, as the Cypher adds them
            found[pid] = [(sum(weights, 0.0), nodes) for weights, nodes in walk(pid)]
    return found


def _split(text: str) -> list[str]:
    return text.split(PATH_SEPARATOR)


def test_top_paths_are_the_k_strongest_of_every_path() -> None:
    records = _records()
    # one shortcut edge from the bottom layer straight to the top: paths of unequal length
    bottom = records.patterns["pattern_id"].iloc[0]
    top = records.patterns["pattern_id"].iloc[-1]
    records.parents = pd.concat(
        [records.parents, pd.DataFrame({"src": [bottom], "dst": [top], "weight": [2.5]})],
        ignore_index=True,
    )
    expected = _all_paths(records)
    paths = top_paths(records, k=4)
    layer_of = records.patterns.set_index("pattern_id")["layer"]
    assert set(paths["src"]) == set(expected)
    for src, rows in paths.groupby("src"):
        best = sorted(expected[src], key=lambda item: -item[0])[:4]
        rows = rows.sort_values("rank")
        assert rows["rank"].tolist() == list(range(len(best)))
        assert rows["weight"].tolist() == pytest.approx([w for w, _ in best])
        for (_, nodes), text, layers, dst in zip(
            best, rows["patterns"], rows["layers"], rows["dst"], strict=True
        ):
            # weights here are random floats: no ties, so the paths themselves must agree
            assert _split(text) == nodes
            assert _split(layers) == [layer_of[n] for n in nodes]
            assert dst == nodes[-1]
    assert len(_split(paths[paths["src"] == bottom]["patterns"].iloc[0])) == 2


def test_top_paths_without_edges_and_with_a_line_break_in_an_id() -> None:
    records = _records()
    assert len(top_paths(GraphRecords(model={"model_id": "m"}, patterns=records.patterns))) == 0
    records.patterns = records.patterns.assign(
        layer=records.patterns["layer"].str.replace("a", "a\nb")
    )
    with pytest.raises(StoreError, match="line break"):
        top_paths(records)


def test_ranked_children_follow_the_strongest_relations_order() -> None:
    records = _records()
    # a tie on the best weight: the pattern id decides
    records.parents.loc[records.parents.index[:2], "weight"] = 5.0
    ranked = ranked_children(records)
    best = records.parents.groupby("src")["weight"].max()
    layer_of = records.patterns.set_index("pattern_id")["layer"]
    for layer_id, rows in ranked.groupby("src"):
        layer = layer_id.split("/")[-1]
        children = best[best.index.map(layer_of) == layer]
        order = sorted(children.index, key=lambda pid: (-children[pid], pid))
        assert rows.sort_values("rank")["dst"].tolist() == order
        assert rows["rank"].tolist() == sorted(rows["rank"]) == list(range(len(order)))
    assert with_best_parent(records.patterns, records.parents)["best_parent_weight"].max() == 5.0


def test_busy_summaries_match_the_aggregation() -> None:
    records = _records()
    patterns = records.patterns.copy()
    patterns.loc[patterns.index[:3], "mean_score"] = -1.0  # below the default least score
    patterns.loc[patterns.index[3], "x"] = np.nan  # no position: counted active, not a cell
    summary = with_busy_summaries(records.filters, patterns).set_index(["layer", "idx"])
    for (layer, index), group in patterns.groupby(["layer", "filter"]):
        active = group[group["mean_score"] >= 0.0]
        cells = np.floor(active["x"] / 8.0) * 1e6 + np.floor(active["y"] / 8.0)
        row = summary.loc[(layer, index)]
        assert row["busy_active"] == len(active)
        assert row["busy_cells"] == cells.dropna().nunique()
        if len(active):
            assert row["busy_mean_score"] == pytest.approx(active["mean_score"].mean())
        else:
            assert np.isnan(row["busy_mean_score"])
