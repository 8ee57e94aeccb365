"""One mined graph made ready for new images, built once per request and handed to every query.

Running a stored graph on new images (locate, build, evaluate parts, explain, diagnose,
compare, evaluate stability, the part-detector reference) needs the same four things:

- the **stored graph** read back from the store (:func:`queries.graphs.load_graph`);
- its **CNN**, reloaded from the recorded source and checked against the recorded fingerprint
  (loaded on first use: a query that never runs the CNN never pays for it);
- the **mining statistics**: the per-unit std of the images the graph was mined on
  (docs/method.md §2). New images must be divided by that std, not by their own: one image has
  no spread. The mined feature cache entry (its key is in the model's parameters) holds it;
  :meth:`LoadedGraph.mining_statistics` is the one place that finds it;
- **image preparation**: features at the graph's layers, extracted (or reused) under
  ``cache_dir/features``, normalised by those statistics.

Where the mined cache entry is gone, the queries differ on purpose, and say so by argument:
``recompute=False`` (locate, build, evaluate parts) lets the new images normalise themselves
(``normalisation == "self"``); ``recompute=True`` (explain, diagnose, evaluate stability, the
reference) extracts the training images again from the folder the model records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from miner.graph import ExplanatoryGraph
from miner.models.loading import resolve_device
from miner.models.spec import LoadedModel
from queries.graphs import StoredGraph, load_graph, load_stored_model
from queries.normalisation import TrainingNormalised

log = logging.getLogger(__name__)


@dataclass
class PreparedImages:
    """Features of a list of images, and which of them were usable."""

    features: TrainingNormalised
    kept: list[int]  # index into the caller's records of every image the features hold
    skipped: dict[int, str] = field(default_factory=dict)  # index -> reason
    forward_s: float = 0.0


class LoadedGraph:
    """A stored graph with its CNN, mining statistics and image preparation (module docstring).

    Build it with :meth:`open` once per request and pass it to every query of that request.
    """

    def __init__(self, stored: StoredGraph, *, cache_dir: Path, device: torch.device) -> None:
        self.stored = stored
        self.cache_dir = Path(cache_dir)
        self.device = device
        self._model: LoadedModel | None = None
        self._mined: FeatureSet | None = None

    @classmethod
    def open(
        cls, store: GraphStore, model_id: str, *, cache_dir: Path, device: str = "cpu"
    ) -> LoadedGraph:
        """Read ``model_id`` from the store; the CNN loads on first use.

        Raises:
            UnknownModel, StoreError: no such (complete) model. ModelError: an unknown device.
        """
        return cls(load_graph(store, model_id), cache_dir=cache_dir, device=resolve_device(device))

    @property
    def model_id(self) -> str:
        """The mined model's id."""
        return self.stored.model_id

    @property
    def graph(self) -> ExplanatoryGraph:
        """The explanatory graph."""
        return self.stored.graph

    @property
    def layer_names(self) -> list[str]:
        """The graph's layers, bottom→top."""
        return self.stored.layer_names

    @property
    def params(self) -> dict[str, Any]:
        """The parameters recorded at mining."""
        return self.stored.params

    @property
    def input_size(self) -> int:
        """The CNN's input side in pixels, as recorded at mining."""
        return int(self.stored.model["input_size"])

    @property
    def features_dir(self) -> Path:
        """Where feature cache entries live."""
        return self.cache_dir / "features"

    @property
    def model(self) -> LoadedModel:
        """The CNN the graph was mined from (loaded once, on first use).

        Raises:
            ModelError: it cannot be loaded any more, or its weights changed since mining.
        """
        if self._model is None:
            self._model = load_stored_model(self.stored)
        return self._model

    @overload
    def mining_features(
        self, *, recompute: Literal[True], progress: Progress = ...
    ) -> FeatureSet: ...

    @overload
    def mining_features(
        self, *, recompute: bool, progress: Progress = ...
    ) -> FeatureSet | None: ...

    def mining_features(
        self, *, recompute: bool, progress: Progress = NULL_PROGRESS
    ) -> FeatureSet | None:
        """The features of the images the graph was mined on: their cache entry; when it is
        gone, ``None``, or with ``recompute`` the recorded training images extracted again.

        Raises:
            InputError: ``recompute`` and the training images cannot be found.
        """
        if self._mined is None:
            self._mined = self._cached_mining_features()
        if self._mined is None and recompute:
            log.info("the mined features of %s are not cached: extracting again", self.model_id)
            progress.log("the training features are not cached; extracting them again")
            self._mined = self.extract(self.training_records(), progress=progress)
        return self._mined

    @overload
    def mining_statistics(
        self, *, recompute: Literal[True], progress: Progress = ...
    ) -> list[np.ndarray]: ...

    @overload
    def mining_statistics(
        self, *, recompute: bool, progress: Progress = ...
    ) -> list[np.ndarray] | None: ...

    def mining_statistics(
        self, *, recompute: bool, progress: Progress = NULL_PROGRESS
    ) -> list[np.ndarray] | None:
        """The per-unit std the graph was mined with, per layer (docs/method.md §2); ``None``
        when it is not cached and not ``recompute`` (see :meth:`mining_features`)."""
        mined = self.mining_features(recompute=recompute, progress=progress)
        return None if mined is None else [mined.std(i) for i in range(len(mined.layers))]

    def training_records(self) -> list[ImageRecord]:
        """The images the model was mined on, as its recorded parameters name them.

        Raises:
            InputError: the image folder recorded at mining time is gone.
        """
        from miner.data.folder import load_dataset

        images = self.params.get("images")
        if not images or not Path(images).exists():
            raise InputError(
                f"the training images of {self.model_id} ({images}) are gone: pass the "
                "--cache-dir used when mining, or mine the model again"
            )
        annotations = self.params.get("annotations")
        dataset = load_dataset(Path(images), Path(annotations) if annotations else None)
        chosen = dataset.select(split=self.params.get("split"), label=self.params.get("label"))
        return list(chosen.records)

    def extract(
        self,
        records: Sequence[ImageRecord],
        *,
        mirror: bool | None = None,
        min_box: int = 50,
        model: LoadedModel | None = None,
        progress: Progress = NULL_PROGRESS,
    ) -> FeatureSet:
        """Features of ``records`` at the graph's layers (from the cache when it has them).

        ``mirror`` defaults to the graph's own setting; ``model`` to the graph's CNN (diagnose
        runs it at a larger input). Raises what :func:`miner.features.extract_features` raises.
        """
        return extract_features(
            model or self.model,
            list(records),
            self.layer_names,
            cache_dir=self.features_dir,
            device=str(self.device),
            mirror=self.graph.settings.use_flip if mirror is None else mirror,
            min_box=min_box,
            progress=progress,
        )

    @staticmethod
    def normalised(
        features: FeatureSet, statistics: Sequence[np.ndarray] | None
    ) -> TrainingNormalised:
        """``features`` divided by the mining ``statistics``; by their own std when ``None``."""
        if statistics is None:  # the mined statistics are gone: the images normalise themselves
            own = [features.std(i) for i in range(len(features.layers))]
            return TrainingNormalised(features, own, "self")
        return TrainingNormalised(features, statistics)

    def prepare_images(
        self,
        records: Sequence[ImageRecord],
        *,
        statistics: Sequence[np.ndarray] | None,
        progress: Progress = NULL_PROGRESS,
    ) -> PreparedImages:
        """The mirrored-and-plain features of ``records``, normalised by ``statistics``, and
        which records they hold (boxes of any size count).

        Raises:
            InputError: none of the images is usable (unreadable, or object box too small).
        """
        started = time.perf_counter()
        features = self.extract(records, mirror=True, min_box=1, progress=progress)
        forward_s = time.perf_counter() - started
        kept = [int(image["index"]) for image in features.meta["images"]]
        skipped = {int(item["index"]): str(item["reason"]) for item in features.meta["skipped"]}
        if not kept:
            raise InputError("none of the images could be read; check the paths and boxes")
        return PreparedImages(self.normalised(features, statistics), kept, skipped, forward_s)

    def _cached_mining_features(self) -> FeatureSet | None:
        from miner.features.cache import find_entry

        key = self.params.get("features_key")
        if not key:
            return None
        entry = find_entry(self.features_dir, str(key))
        return None if entry is None else FeatureSet.open(entry)


__all__ = ["LoadedGraph", "PreparedImages"]
