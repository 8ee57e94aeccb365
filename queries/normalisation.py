"""New images seen through the statistics of the images a graph was mined on (docs/method.md §2).

A graph's patterns were learned on mass ``max(x, 0) / s`` with ``s`` the per-unit std of the
mining images (or of a background set). New images — shots, test images, an image to explain —
must be divided by that same ``s``, not by their own: one image has no spread. The mined feature
cache entry (its key is recorded in the model's parameters) holds ``s``; when it is gone it is
extracted again from the recorded training images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from miner.models.spec import LayerGeometry, LoadedModel
from queries.graphs import StoredGraph


class TrainingNormalised:
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
        self._features = features
        self.normalisation = normalisation
        self._inv = [
            torch.from_numpy(1.0 / np.maximum(np.asarray(s, dtype=np.float32), 1e-12))
            for s in train_std
        ]

    @property
    def num_images(self) -> int:
        """How many images the source holds."""
        return self._features.num_images

    @property
    def layers(self) -> list[LayerGeometry]:
        """Geometry of the layers, bottom→top."""
        return self._features.layers

    @property
    def mirrored(self) -> bool:
        """Whether mirrored maps exist."""
        return self._features.mirrored

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


def training_std(
    stored: StoredGraph, model: LoadedModel, cache_dir: Path, progress: Progress = NULL_PROGRESS
) -> list[np.ndarray]:
    """The per-unit std the graph was learned with, per layer (see the module docstring).

    Raises:
        InputError: the training cache is gone and the training images cannot be found.
    """
    from miner.features.cache import find_entry, open_entry

    features_dir = Path(cache_dir) / "features"
    key = str(stored.params.get("features_key") or "")
    entry = find_entry(features_dir, key) if key else None
    if entry is not None:
        cached = open_entry(entry)
        return [cached.std(i) for i in range(len(cached.layers))]
    records = training_records(stored)
    progress.log("explain: the training features are not cached; extracting them again")
    features = extract_features(
        model,
        records,
        stored.layer_names,
        cache_dir=features_dir,
        mirror=stored.graph.settings.use_flip,
        progress=progress,
    )
    return [features.std(i) for i in range(len(features.layers))]


def training_records(stored: StoredGraph) -> list[ImageRecord]:
    """The images the model was mined on, as its recorded parameters name them.

    Raises:
        InputError: the image folder recorded at mining time is gone.
    """
    from miner.data.folder import load_dataset

    images = stored.params.get("images")
    if not images or not Path(images).exists():
        raise InputError(
            f"the training images of {stored.model_id} ({images}) are gone: pass the --cache-dir "
            "used when mining, or mine the model again"
        )
    annotations = stored.params.get("annotations")
    dataset = load_dataset(Path(images), Path(annotations) if annotations else None)
    chosen = dataset.select(split=stored.params.get("split"), label=stored.params.get("label"))
    return list(chosen.records)


def mined_features(stored: StoredGraph, cache_dir: Path) -> FeatureSet | None:
    """The feature cache entry the graph was mined from (``None`` when it is gone)."""
    from miner.features.cache import find_entry

    key = stored.params.get("features_key")
    if not key:
        return None
    entry = find_entry(Path(cache_dir) / "features", str(key))
    return None if entry is None else FeatureSet.open(entry)


__all__ = ["TrainingNormalised", "mined_features", "training_records", "training_std"]
