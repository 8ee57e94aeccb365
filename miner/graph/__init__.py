"""The explanatory graph: learning (docs/method.md §5) and top-down inference (§4).

Public surface: :class:`GraphSettings`, :class:`FeatureSource` / :class:`TensorFeatures` (input),
:class:`ExplanatoryGraph` / :class:`LayerPatterns` (output), :func:`learn_graph`,
:func:`infer_graph` / :class:`GraphInference`.

Everything per pattern, candidate and image is batched tensor code, chunked over images
(``GraphSettings.chunk_size``, sub-sliced to ``work_elements``). The one approximation: the
evidence ``A`` at a continuous position is the bilinear interpolation of the map smoothed once per
chunk, not the Gaussian sum evaluated at that exact position. The within-filter competition is
exact (see :mod:`miner.graph.evidence`). Where docs/method.md leaves a choice open, the modules say
what was chosen: tau is per image, ``mean d²`` of parent selection is one number per layer and
iteration, parent spreads are rescaled by the stride ratio with their deviations, mu stays on the
map, and the flip criterion is Σ_V log Σ_c g·A.
"""

from miner.graph.inference import infer_graph
from miner.graph.learning import learn_graph
from miner.graph.settings import GraphSettings
from miner.graph.types import (
    ExplanatoryGraph,
    FeatureSource,
    GraphInference,
    LayerInference,
    LayerPatterns,
    TensorFeatures,
)

__all__ = [
    "ExplanatoryGraph",
    "FeatureSource",
    "GraphInference",
    "GraphSettings",
    "LayerInference",
    "LayerPatterns",
    "TensorFeatures",
    "infer_graph",
    "learn_graph",
]
