"""Cross-model comparison of explanatory graphs (``explgraph compare``).

Two mined models are inferred on a shared image set; a pattern of A and a pattern of B match when
they fire on the same images at the same places (:mod:`~queries.compare.similarity`). The result
is a table per layer pair, a per-part table when the images carry keypoints, graph statistics of
both models side by side, a PNG of the layer-by-layer match matrix, and ``MATCHES`` edges in the
store.

Data flow: store → :func:`compare_models` (features, inference, matching) →
:class:`CompareReport` → :func:`write_matches` / :func:`draw_match_matrix` / JSON.
"""

from queries.compare.plot import draw_match_matrix, match_share
from queries.compare.run import CompareReport, CompareSettings, compare_models
from queries.compare.similarity import (
    Candidates,
    firing_weights,
    match_candidates,
    similarity_candidates,
)
from queries.compare.statistics import graph_statistics
from queries.compare.store import (
    NO_COUNTERPART_CYPHER,
    pattern_ids,
    unmatched_per_layer,
    write_matches,
)

__all__ = [
    "NO_COUNTERPART_CYPHER",
    "Candidates",
    "CompareReport",
    "CompareSettings",
    "compare_models",
    "draw_match_matrix",
    "firing_weights",
    "graph_statistics",
    "match_candidates",
    "match_share",
    "pattern_ids",
    "similarity_candidates",
    "unmatched_per_layer",
    "write_matches",
]
