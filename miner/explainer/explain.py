"""Train an explainer for one layer of a loaded performer: its maps, its spec, the training run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.explainer.checkpoint import ExplainerCheckpoint
from miner.explainer.data import AnnotatedCrops
from miner.explainer.network import ExplainerSpec
from miner.explainer.performer import layer_maps, performer_layer, performer_record
from miner.explainer.training import ExplainerConfig, train_explainer
from miner.models.spec import LoadedModel


def explain_layer(
    loaded: LoadedModel,
    layer: str,
    crops: AnnotatedCrops,
    config: ExplainerConfig = ExplainerConfig(),
    *,
    weights: str | None = None,
    options: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> ExplainerCheckpoint:
    """Train an explainer of ``layer`` of the frozen performer ``loaded`` on ``crops``.

    Args:
        loaded: the performer (left as it was: eval mode, gradients off, no hook).
        layer: the layer to explain (node name, alias or module path of a conv or conv block).
        crops: the training crops at the performer's input size (their parts are not used).
        config: optimiser settings and seed.
        weights: the weights argument the performer was loaded with (recorded to reload it).
        options: :class:`ExplainerSpec` fields other than the layer's shape (filters, tau, ...).
        data: what the crops are, recorded in the checkpoint (source, seed, split).
        checkpoint_dir: per-epoch checkpoints; a re-run of the same training resumes.

    Raises:
        ModelError: the layer cannot be explained (unknown, no 2-D map, not a module output).
        InputError: too few crops.
    """
    target = performer_layer(loaded, layer)
    maps, _ = layer_maps(loaded, target, crops.images, device=device, progress=progress)
    geometry = target.geometry
    spec = ExplainerSpec(
        layer=target.node,
        module=target.module,
        channels=geometry.channels,
        height=geometry.height,
        width=geometry.width,
        **dict(options or {}),
    )
    return train_explainer(
        maps,
        spec,
        config,
        performer=performer_record(loaded, target, weights),
        data=data,
        checkpoint_dir=checkpoint_dir,
        device=device,
        progress=progress,
    )


__all__ = ["explain_layer"]
