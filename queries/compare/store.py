"""Matches in the graph store: ``MATCHES`` edges (Pattern of A → Pattern of B, ``similarity``).

Writing the matches of A against B first removes the ``MATCHES`` edges an earlier comparison of
the same two models (same direction) left, so the edges always describe the latest run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explgraph.core.errors import StoreError
from graphstore import GraphStore

#: Cypher (both engines) for the patterns of model ``$a`` without a counterpart in model ``$b``,
#: counted per layer. Undirected, so it sees edges of ``compare A B`` and of ``compare B A``.
NO_COUNTERPART_CYPHER = (
    "MATCH (p:Pattern) WHERE p.model_id = $a "
    "OPTIONAL MATCH (p)-[m:MATCHES]-(q:Pattern) WHERE q.model_id = $b "
    "WITH p, count(q) AS matches WHERE matches = 0 "
    "RETURN p.layer AS layer, count(p) AS unmatched ORDER BY layer"
)

_DELETE_CYPHER = (
    "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) WHERE p.model_id = $a AND q.model_id = $b DELETE m"
)


def pattern_ids(store: GraphStore, model_id: str) -> dict[str, np.ndarray]:
    """Per layer name, the pattern ids of ``model_id`` indexed by the pattern's ``idx``.

    Raises:
        StoreError: a layer's stored ``idx`` values are not ``0..P-1`` (an incomplete write).
    """
    rows = pd.DataFrame(
        store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m "
            "RETURN p.layer AS layer, p.idx AS idx, p.pattern_id AS pattern_id",
            {"m": model_id},
        ),
        columns=["layer", "idx", "pattern_id"],
    )
    out: dict[str, np.ndarray] = {}
    for layer, group in rows.groupby("layer", sort=False):
        ordered = group.sort_values("idx")
        if not np.array_equal(ordered["idx"].to_numpy(np.int64), np.arange(len(ordered))):
            raise StoreError(
                f"patterns of {model_id}/{layer} are not numbered 0..{len(ordered) - 1}; "
                "mine the model again"
            )
        out[str(layer)] = ordered["pattern_id"].to_numpy(dtype=object)
    return out


def write_matches(store: GraphStore, model_a: str, model_b: str, matches: pd.DataFrame) -> int:
    """Replace the ``MATCHES`` edges from ``model_a``'s patterns to ``model_b``'s.

    Args:
        store: a store opened for writing.
        model_a, model_b: the compared models.
        matches: ``pattern_a``, ``pattern_b`` (pattern ids) and ``similarity`` columns.

    Returns:
        The number of edges written.
    """
    store.query(_DELETE_CYPHER, {"a": model_a, "b": model_b}, write=True)
    if len(matches) == 0:
        return 0
    frame = pd.DataFrame(
        {
            "src": matches["pattern_a"].astype(str).to_numpy(),
            "dst": matches["pattern_b"].astype(str).to_numpy(),
            "similarity": matches["similarity"].astype(np.float64).to_numpy(),
        }
    )
    store.write_relationships("MATCHES", frame)
    return len(frame)


def unmatched_per_layer(store: GraphStore, model_a: str, model_b: str) -> dict[str, int]:
    """Run :data:`NO_COUNTERPART_CYPHER`: per layer of ``model_a``, patterns with no match."""
    rows = store.query(NO_COUNTERPART_CYPHER, {"a": model_a, "b": model_b})
    return {str(row["layer"]): int(row["unmatched"]) for row in rows}


__all__ = ["NO_COUNTERPART_CYPHER", "pattern_ids", "unmatched_per_layer", "write_matches"]
