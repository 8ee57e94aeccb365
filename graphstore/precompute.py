"""Answers fixed at write time, so the canned queries never scan every pattern or edge.

Written with the model, in the same transaction (LadybugDB) or staged copy (Bolt):

- ``Pattern.best_parent_weight`` and ``RANKED_CHILD`` edges (layer -> pattern): the strongest
  of a pattern's PARENT edges, and the pattern's rank by it within its layer (0 = strongest;
  ties by pattern id), kept for the :data:`RANKED_CHILDREN_PER_LAYER` best of each layer, so
  ``strongest-relations`` reads the ``limit`` best children and only their edges.
- ``Filter.busy_active`` / ``busy_cells`` / ``busy_mean_score``: ``busy-filters`` at its default
  grid (:data:`BUSY_CELL` pixels, mean score >= :data:`BUSY_MIN_SCORE`), per filter.
- ``TOP_PATH`` edges: for each pattern the :data:`TOP_PATHS_PER_PATTERN` strongest paths of
  PARENT edges up to a pattern without parents (largest summed weight), found by a k-best
  dynamic programme over the edge arrays (exact: the k best paths with h hops from a pattern
  extend, over each of its edges, one of the k best paths with h - 1 hops from the parent).

Everything is vectorised over edges; nothing loops over patterns in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from explgraph.core.errors import StoreError
from graphstore.records import _as_arrow
from graphstore.schema import (
    BUSY_CELL,
    BUSY_MIN_SCORE,
    MAX_PATH_EDGES,
    PATH_SEPARATOR,
    RANKED_CHILDREN_PER_LAYER,
    TOP_PATHS_PER_PATTERN,
)

if TYPE_CHECKING:
    from graphstore.records import GraphRecords

#: one length of path in :func:`top_paths`: (value, edge, parent's slot), each patterns x k
Level = tuple[np.ndarray, np.ndarray, np.ndarray]


def with_best_parent(patterns: pd.DataFrame, parents: pd.DataFrame) -> pd.DataFrame:
    """``patterns`` plus ``best_parent_weight``: the strongest of each one's PARENT edges."""
    if "weight" not in parents.columns or not len(parents):
        return patterns
    best = parents.groupby("src")["weight"].max()
    return patterns.assign(best_parent_weight=patterns["pattern_id"].map(best).astype("float64"))


def ranked_children(records: GraphRecords) -> pd.DataFrame:
    """The ``RANKED_CHILD`` rows: layer id -> each of the layer's ``RANKED_CHILDREN_PER_LAYER``
    strongest patterns with parents, ``rank`` by its strongest PARENT weight within the layer
    (0 = strongest; ties by pattern id, the order ``strongest-relations`` asks for)."""
    patterns = with_best_parent(records.patterns, records.parents)
    if "best_parent_weight" not in patterns.columns:
        return pd.DataFrame({"src": [], "dst": [], "rank": []})
    ranked = pd.DataFrame(
        {
            "layer": patterns["layer"].astype(str).to_numpy(),
            "dst": patterns["pattern_id"].astype(str).to_numpy(),
            "w": patterns["best_parent_weight"].to_numpy(),
        }
    ).dropna(subset=["w"])
    ranked = ranked.sort_values(["w", "dst"], ascending=[False, True], kind="mergesort")
    layer_ids = records.layers.set_index(records.layers["name"].astype(str))["layer_id"]
    rank = ranked.groupby("layer", sort=False).cumcount().astype("int64").to_numpy()
    kept = rank < RANKED_CHILDREN_PER_LAYER
    return pd.DataFrame(
        {
            "src": ranked["layer"].map(layer_ids).to_numpy()[kept],
            "dst": ranked["dst"].to_numpy()[kept],
            "rank": rank[kept],
        }
    )


def with_busy_summaries(filters: pd.DataFrame, patterns: pd.DataFrame) -> pd.DataFrame:
    """``filters`` plus ``busy-filters``' three figures at its default grid and score.

    ``busy_active``: patterns with mean score >= :data:`BUSY_MIN_SCORE`; ``busy_cells``: the
    distinct :data:`BUSY_CELL`-pixel cells of their mean positions; ``busy_mean_score``: their
    mean score. Filters without such patterns get 0, 0 and null.
    """
    needed = {"x", "y", "mean_score"}
    if not needed <= set(patterns.columns):
        return filters.assign(busy_active=0, busy_cells=0, busy_mean_score=np.nan)
    score = patterns["mean_score"].astype("float64")
    active = patterns[score >= BUSY_MIN_SCORE]
    x = active["x"].astype("float64").to_numpy()
    y = active["y"].astype("float64").to_numpy()
    # the same arithmetic as the Cypher, so the cells agree bit for bit
    cell = np.floor(x / BUSY_CELL) * 1000000.0 + np.floor(y / BUSY_CELL)
    keyed = pd.DataFrame(
        {
            "layer": active["layer"].to_numpy(),
            "idx": active["filter"].astype("int64").to_numpy(),
            "cell": cell,
            "score": active["mean_score"].astype("float64").to_numpy(),
        }
    )
    groups = keyed.groupby(["layer", "idx"])
    summary = pd.DataFrame(
        {
            "busy_active": groups.size(),
            "busy_cells": groups["cell"].nunique(),  # NaN cells (no position) not counted
            "busy_mean_score": groups["score"].mean(),
        }
    )
    key = pd.MultiIndex.from_arrays([filters["layer"], filters["idx"].astype("int64")])
    found = summary.reindex(key)
    return filters.assign(
        busy_active=found["busy_active"].fillna(0).astype("int64").to_numpy(),
        busy_cells=found["busy_cells"].fillna(0).astype("int64").to_numpy(),
        busy_mean_score=found["busy_mean_score"].to_numpy(),
    )


def _best_per_group(group: np.ndarray, value: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` largest ``value`` per ``group`` (ties: first index first), and
    each one's rank within its group."""
    order = np.lexsort((-value, group))  # a stable sort: equal values keep index order
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    run = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.arange(len(order)) - run
    keep = rank < k
    return order[keep], rank[keep]


def _candidates(
    child: np.ndarray, parent: np.ndarray, weight: np.ndarray, value: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edge, parent slot, path value) of every extension that can be among its child's ``k``
    best: the ``k``-th best extension of each parent's best path bounds the rest from below,
    so only candidates at or above it are kept (a few per child instead of edges x k)."""
    rooted = np.flatnonzero(np.isfinite(value[parent, 0]))
    first = weight[rooted] + value[parent[rooted], 0]
    chosen, rank = _best_per_group(child[rooted], first, k)
    bound = np.full(len(value), -np.inf)
    kth = chosen[rank == k - 1]
    bound[child[rooted[kth]]] = first[kth]
    extend = weight[rooted, None] + value[parent[rooted]]  # rooted edges x parent slots
    keep = np.isfinite(extend) & (extend >= bound[child[rooted], None])
    row, slot = np.nonzero(keep)
    return rooted[row], slot, extend[row, slot]


def top_paths(records: GraphRecords, k: int = TOP_PATHS_PER_PATTERN) -> pd.DataFrame:
    """The ``TOP_PATH`` rows of ``records``: per pattern its ``k`` strongest paths upward.

    Columns: ``src`` (the pattern), ``dst`` (the path's last pattern, which has no parents),
    ``rank`` (0 = strongest), ``weight`` (summed PARENT weight, added from the pattern
    upward), ``patterns`` and ``layers`` (the path's pattern ids and their layers).
    """
    columns = ["src", "dst", "rank", "weight", "patterns", "layers"]
    parents = records.parents
    if not len(parents) or "weight" not in parents.columns:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
    id_array = _as_arrow(records.patterns["pattern_id"])
    layer_array = _as_arrow(records.patterns["layer"])
    _refuse_separator(id_array, layer_array)
    ids = np.asarray(id_array.to_numpy(zero_copy_only=False), dtype=object)
    # Arrow's hash lookup: pandas' get_indexer on Arrow strings took seconds at VGG size
    child = np.asarray(pc.index_in(_as_arrow(parents["src"]), value_set=id_array), np.int64)
    parent = np.asarray(pc.index_in(_as_arrow(parents["dst"]), value_set=id_array), np.int64)
    weight = parents["weight"].astype("float64").to_numpy()
    levels = _path_levels(child, parent, weight, len(ids), k)
    if not levels:  # no pattern without parents above any edge (a cycle): no path ends
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
    node, level, slot, rank = _best_over_lengths(levels, k)
    path, end, total = _walk_up(node, level, slot, levels, parent, weight)
    # the path lists as Arrow list arrays built from offsets: no Python list per path
    hops = level + 1
    flat = path[path >= 0]  # row by row, each path from the pattern upward
    offsets = pa.array(np.r_[0, np.cumsum(hops + 1)], pa.int32())
    take = pa.array(flat)
    return pd.DataFrame(
        {
            "src": ids[node],
            "dst": ids[end],
            "rank": rank.astype(np.int64),
            "weight": total,
            "patterns": _joined(pa.ListArray.from_arrays(offsets, id_array.take(take))),
            "layers": _joined(pa.ListArray.from_arrays(offsets, layer_array.take(take))),
        }
    )


def _refuse_separator(id_array: pa.Array, layer_array: pa.Array) -> None:
    for what, values in (("pattern id", id_array), ("layer name", layer_array)):
        if pc.any(pc.match_substring(values, PATH_SEPARATOR)).as_py():
            raise StoreError(
                f"a {what} contains a line break, which the stored paths use as separator: "
                "rename it"
            )


def _path_levels(
    child: np.ndarray, parent: np.ndarray, weight: np.ndarray, n: int, k: int
) -> list[Level]:
    """Level ``h``: per pattern up to ``k`` paths of exactly ``h + 1`` edges, as (value, edge,
    slot of the parent's path it extends), each ``n`` x ``k``; empty when no path ends."""
    is_top = np.ones(n, dtype=bool)
    is_top[child] = False
    value = np.full((n, 1), -np.inf)
    value[is_top, 0] = 0.0
    levels: list[Level] = []
    for _ in range(MAX_PATH_EDGES):
        edge, slot, candidate = _candidates(child, parent, weight, value, k)
        if not len(edge):
            break
        chosen, rank = _best_per_group(child[edge], candidate, k)
        new_value = np.full((n, k), -np.inf)
        new_edge = np.full((n, k), -1, dtype=np.int64)
        new_slot = np.full((n, k), -1, dtype=np.int64)
        owner = child[edge[chosen]]
        new_value[owner, rank] = candidate[chosen]
        new_edge[owner, rank] = edge[chosen]
        new_slot[owner, rank] = slot[chosen]
        levels.append((new_value, new_edge, new_slot))
        value = new_value
    return levels


def _best_over_lengths(
    levels: list[Level], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best paths per pattern over every path length: (pattern, level, slot, rank)."""
    cand_node, cand_level, cand_slot, cand_value = [], [], [], []
    for h, (level_value, _, _) in enumerate(levels):
        node, slot = np.nonzero(np.isfinite(level_value))
        cand_node.append(node)
        cand_level.append(np.full(len(node), h))
        cand_slot.append(slot)
        cand_value.append(level_value[node, slot])
    node = np.concatenate(cand_node)
    level = np.concatenate(cand_level)
    slot = np.concatenate(cand_slot)
    chosen, rank = _best_per_group(node, np.concatenate(cand_value), k)
    return node[chosen], level[chosen], slot[chosen], rank


def _walk_up(
    node: np.ndarray,
    level: np.ndarray,
    slot: np.ndarray,
    levels: list[Level],
    parent: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk each chosen path upward: its pattern indices (row-wise, ``-1`` padded), its last
    pattern, and its weight, added in path order (as the Cypher sums them)."""
    hops = level + 1
    longest = int(hops.max())
    path = np.full((len(node), longest + 1), -1, dtype=np.int64)
    path[:, 0] = node
    total = np.zeros(len(node))
    current, current_slot = node.copy(), slot.copy()
    for step in range(longest):
        active = np.flatnonzero(hops > step)
        lvl = level[active] - step
        edge = np.empty(len(active), dtype=np.int64)
        next_slot = np.empty(len(active), dtype=np.int64)
        for h in np.unique(lvl):
            at = lvl == h
            _, level_edge, level_slot = levels[h]
            edge[at] = level_edge[current[active[at]], current_slot[active[at]]]
            next_slot[at] = level_slot[current[active[at]], current_slot[active[at]]]
        total[active] += weight[edge]
        current[active] = parent[edge]
        current_slot[active] = next_slot
        path[active, step + 1] = parent[edge]
    return path, current, total


def _joined(lists: pa.ListArray) -> pd.Series:
    """Each list as one string joined by :data:`PATH_SEPARATOR` (the query splits it again):
    list properties cost LadybugDB ten times the write time of one string."""
    return pd.Series(pd.arrays.ArrowExtensionArray(pc.binary_join(lists, PATH_SEPARATOR)))


__all__ = [
    "BUSY_CELL",
    "BUSY_MIN_SCORE",
    "MAX_PATH_EDGES",
    "RANKED_CHILDREN_PER_LAYER",
    "TOP_PATHS_PER_PATTERN",
    "ranked_children",
    "top_paths",
    "with_best_parent",
    "with_busy_summaries",
]
