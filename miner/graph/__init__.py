"""The explanatory graph: learning (method.md §5) and top-down inference (§4).

Public surface: :class:`GraphSettings`, :class:`FeatureSource` / :class:`TensorFeatures` (input),
:class:`ExplanatoryGraph` / :class:`LayerPatterns` (output), :func:`learn_graph`,
:func:`infer_graph` / :class:`GraphInference`.
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
