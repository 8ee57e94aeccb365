"""The explainer network (Zhang et al., "Unsupervised learning of neural networks to explain
neural networks"): a second network beside a frozen CNN that re-expresses one conv layer's
feature map through part filters, and the share ``p`` of the map they carry.

- :mod:`~miner.explainer.network`: the module and its loss;
- :mod:`~miner.explainer.performer`: the performer's layer, its maps, the swap hook;
- :mod:`~miner.explainer.training`: seeded training with a checkpoint per epoch and resume;
- :mod:`~miner.explainer.checkpoint`: the file format;
- :mod:`~miner.explainer.data`: annotated crops (files or the synthetic set in memory);
- :mod:`~miner.explainer.evaluation`: p, reconstruction error, agreement and accuracy with the
  layer swapped;
- :mod:`~miner.explainer.explain`: one call from a loaded performer to a trained explainer.

The part purity of the filters is :mod:`queries.explainer`'s (it uses :mod:`queries.filter_parts`).
"""

from miner.explainer.checkpoint import ExplainerCheckpoint, read_explainer, save_explainer
from miner.explainer.data import AnnotatedCrops, record_crops, synthetic_crops
from miner.explainer.evaluation import ExplainedImages, PDistribution, explain_images
from miner.explainer.explain import explain_layer
from miner.explainer.network import Explainer, ExplainerOutput, ExplainerSpec, explainer_loss
from miner.explainer.performer import (
    PerformerLayer,
    layer_maps,
    load_performer,
    performer_layer,
    swapped_layer,
)
from miner.explainer.training import ExplainerConfig, train_explainer

__all__ = [
    "AnnotatedCrops",
    "ExplainedImages",
    "Explainer",
    "ExplainerCheckpoint",
    "ExplainerConfig",
    "ExplainerOutput",
    "ExplainerSpec",
    "PDistribution",
    "PerformerLayer",
    "explain_images",
    "explain_layer",
    "explainer_loss",
    "layer_maps",
    "load_performer",
    "performer_layer",
    "read_explainer",
    "record_crops",
    "save_explainer",
    "swapped_layer",
    "synthetic_crops",
    "train_explainer",
]
