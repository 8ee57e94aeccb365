"""One mined graph made ready for new images, built once per request and handed to every query.

Running a stored graph on new images (locate, build, evaluate parts, explain, diagnose,
compare, evaluate stability, the part-detector reference) needs the same four things, all read
from the store (format :data:`graphstore.schema.FORMAT_VERSION`), never from the mining cache or
the training images:

- the **stored graph** read back from the store (:func:`queries.graphs.load_graph`);
- its **CNN**, found by the identity the model records (:mod:`miner.models.identity`: a
  torchvision name and weights enum, or a checkpoint verified by its SHA-256, looked for with
  ``--model-file``, at its bundled resource, where it was at mining, or beside the store) and
  checked against the recorded parameter fingerprint (loaded on first use: a query that never
  runs the CNN never pays for it);
- the **mining statistics**: the per-unit std of the images the graph was mined on
  (docs/method.md §2) and each filter's mean peak over them, stored on the model's layers.
  New images must be divided by that std, not by their own: one image has no spread. A model
  written before the store carried them makes :meth:`LoadedGraph.mining_statistics` stop with
  one line naming the command, never fall back to something else;
- **image preparation**: features at the graph's layers, extracted (or reused) under
  ``cache_dir/features``, normalised by those statistics.

Only the controls of ``evaluate stability --controls`` read the training images (or their cache
entry): :meth:`LoadedGraph.mining_features`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explgraph.core.errors import InputError, ModelError, StoreError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from graphstore.arrays import decode_array
from graphstore.versions import model_format_version
from miner.data.records import Box, ImageRecord
from miner.features import FeatureSet, extract_features
from miner.graph import ExplanatoryGraph
from miner.models.identity import CheckpointSearch, CnnIdentity, load_identified
from miner.models.loading import load_model, resolve_device
from miner.models.spec import LoadedModel
from queries.graphs import StoredGraph, load_graph
from queries.normalisation import TrainingNormalised

log = logging.getLogger(__name__)


@dataclass
class PreparedImages:
    """Features of a list of images, and which of them were usable."""

    features: TrainingNormalised
    kept: list[int]  # index into the caller's records of every image the features hold
    skipped: dict[int, str] = field(default_factory=dict)  # index -> reason
    forward_s: float = 0.0


@dataclass(frozen=True)
class LayerStatistics:
    """One layer's stored statistics of the mining images, as the store holds them (encoded by
    :mod:`graphstore.arrays`); ``None`` where the model was written without them."""

    unit_std: str | None
    filter_peaks: str | None


#: Reads the stored statistics of a model's layers (the Cypher-lint test checks it).
STATISTICS_QUERY = (
    "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.depth AS depth, "
    "l.unit_std AS unit_std, l.filter_peaks AS filter_peaks"
)


def read_statistics(store: GraphStore, model_id: str) -> list[LayerStatistics]:
    """The stored statistics of ``model_id``'s layers, bottom→top."""
    rows = store.query(STATISTICS_QUERY, {"m": model_id})
    rows.sort(key=lambda row: int(row["depth"]))
    return [LayerStatistics(row["unit_std"], row["filter_peaks"]) for row in rows]


class LoadedGraph:
    """A stored graph with its CNN, mining statistics and image preparation (module docstring).

    Build it with :meth:`open` once per request and pass it to every query of that request.
    ``command`` names what the request runs as the error line shows it (the CLI passes
    ``"`explgraph locate`"``): a model that lacks something the request needs stops with one
    line naming it.
    """

    def __init__(
        self,
        stored: StoredGraph,
        *,
        cache_dir: Path,
        device: torch.device,
        statistics: Sequence[LayerStatistics] = (),
        search: CheckpointSearch | None = None,
        command: str = "this query",
    ) -> None:
        self.stored = stored
        self.cache_dir = Path(cache_dir)
        self.device = device
        self.search = search or CheckpointSearch()
        self.command = command
        self._statistics = list(statistics)
        self._model: LoadedModel | None = None
        self._mined: FeatureSet | None = None
        self._std: list[np.ndarray] | None = None

    @classmethod
    def open(
        cls,
        store: GraphStore,
        model_id: str,
        *,
        cache_dir: Path,
        device: str = "cpu",
        search: CheckpointSearch | None = None,
        command: str = "this query",
    ) -> LoadedGraph:
        """Read ``model_id`` and its statistics from the store; the CNN loads on first use,
        its checkpoint found as ``search`` says.

        Raises:
            UnknownModel, StoreError: no such (complete) model. ModelError: an unknown device.
        """
        return cls(
            load_graph(store, model_id),
            cache_dir=cache_dir,
            device=resolve_device(device),
            statistics=read_statistics(store, model_id),
            search=search,
            command=command,
        )

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
            ModelError: it cannot be found or loaded any more, or its weights changed since
                mining.
        """
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self) -> LoadedModel:
        """The CNN by its stored identity (a model written before identities: by its source)."""
        model = self.stored.model
        identity = model.get("identity")
        if identity:
            loaded = load_identified(CnnIdentity.from_json(identity), self.search, self.model_id)
        else:
            loaded = load_model(str(model["source"]), self.params.get("weights_arg"))
        if loaded.fingerprint != model.get("fingerprint"):
            raise ModelError(
                f"the weights of {loaded.source} changed since {self.model_id} was mined "
                f"(fingerprint {loaded.fingerprint} != {model.get('fingerprint')}): "
                "mine the model again"
            )
        return loaded

    def mining_statistics(self) -> list[np.ndarray]:
        """The per-unit std the graph was mined with, per layer (docs/method.md §2), as the
        store holds it.

        Raises:
            StoreError: the model was written without it (one line naming the command).
        """
        if self._std is None:
            self._std = [decode_array(text) for text in self._stored("unit_std")]
        return self._std

    def filter_peaks(self) -> list[torch.Tensor]:
        """Per layer ``[C]``: each filter's mean peak mass over the mining images (the raw
        filters' reference, :func:`queries.aog.baselines.filter_reference_peaks`).

        Raises:
            StoreError: the model was written without them (one line naming the command).
        """
        return [torch.from_numpy(decode_array(text)) for text in self._stored("filter_peaks")]

    def mined_boxes(self) -> dict[str, Box]:
        """The object box each mining image was cropped to, by its stored ``Image.path``.

        Raises:
            StoreError: the model was written without them (one line naming the command).
        """
        text = self.stored.model.get("boxes")
        if text is None:
            raise self._lacks("the object boxes of the mining images")
        return {path: (box[0], box[1], box[2], box[3]) for path, box in json.loads(text).items()}

    def _lacks(self, what: str) -> StoreError:
        """The one line saying the model was written without ``what`` this command needs."""
        version = model_format_version(self.stored.model)
        return StoreError(
            f"{self.command} needs {what}, which model {self.model_id} (store "
            f"format {version}) does not hold: run `explgraph store upgrade`, or mine the model "
            "again"
        )

    def _stored(self, name: str) -> list[str]:
        """Every layer's stored ``name`` statistic, or the one line saying the model lacks it."""
        values = [getattr(layer, name) for layer in self._statistics]
        if len(values) != len(self.layer_names) or any(value is None for value in values):
            raise self._lacks("the statistics of the mining images")
        return [str(value) for value in values]

    def mining_features(self, *, progress: Progress = NULL_PROGRESS) -> FeatureSet:
        """The features of the images the graph was mined on: their cache entry, else the
        recorded training images extracted again (only what learns anew from them asks).

        Raises:
            InputError: the cache entry is gone and the training images cannot be found.
        """
        if self._mined is None:
            self._mined = self._cached_mining_features()
        if self._mined is None:
            log.info("the mined features of %s are not cached: extracting again", self.model_id)
            progress.log("the training features are not cached; extracting them again")
            self._mined = self.extract(self.training_records(), progress=progress)
        return self._mined

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


__all__ = [
    "STATISTICS_QUERY",
    "LayerStatistics",
    "LoadedGraph",
    "PreparedImages",
    "read_statistics",
]
