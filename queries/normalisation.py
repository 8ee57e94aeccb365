"""New images seen through the statistics of the images a graph was mined on (docs/method.md §2).

A graph's patterns were learned on mass ``max(x, 0) / s`` with ``s`` the per-unit std of the
mining images (or of a background set). New images — shots, test images, an image to explain —
must be divided by that same ``s``, not by their own: one image has no spread. Where ``s`` comes
from is :meth:`queries.loaded.LoadedGraph.mining_statistics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from miner.features import FeatureSet
from miner.graph.types import FeatureView


class TrainingNormalised(FeatureView):
    """A :class:`~miner.graph.FeatureSource` over new images, divided by the training std.

    ``normalisation`` says where the std came from: ``"mined"`` (the images the graph was mined
    on) or ``"self"`` (the images themselves, when the mined statistics are not available).
    """

    def __init__(
        self,
        features: FeatureSet,
        train_std: Sequence[np.ndarray],
        normalisation: str = "mined",
    ) -> None:
        super().__init__(features)
        self._features: FeatureSet = features  # raw_maps is the FeatureSet's own
        self.normalisation = normalisation
        self._inv = [
            torch.from_numpy(1.0 / np.maximum(np.asarray(s, dtype=np.float32), 1e-12))
            for s in train_std
        ]

    def chunk(
        self,
        layer: int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """Mass ``max(x, 0) / s_train`` of images ``start:stop``."""
        raw = np.array(self._features.raw_maps(layer, flipped=flipped)[start:stop])
        return (torch.from_numpy(raw).float() * self._inv[layer]).to(device)


__all__ = ["TrainingNormalised"]
