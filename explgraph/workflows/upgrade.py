"""``explgraph store upgrade``: bring the models of an older store to :data:`FORMAT_VERSION`.

A format-1 model lacks what inference needs (each layer's per-unit std and filter peaks of the
mining images, their object boxes, the CNN's identity). Those are computed only when asked
(``statistics``), and only from what the model names: its mining feature-cache entry under
the given cache folder, else the training images its parameters record. The layers are
written first and ``Model.format_version`` last, so an interrupted upgrade leaves a model that
still reads as format 1 and is upgraded again by the next run. An embedded store is copied
whole first (:func:`backup_store`).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from explgraph.core.progress import NULL_PROGRESS, Progress
from explgraph.workflows.rows import layer_statistics, mining_boxes
from graphstore import GraphStore
from graphstore.records import layer_id
from graphstore.schema import FORMAT_VERSION
from graphstore.versions import mark_store_format, model_format_version
from miner.models.identity import identify
from queries.loaded import LoadedGraph

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpgradeLine:
    """What the upgrade did (or would need) for one model."""

    model_id: str
    before: int
    after: int
    note: str


def backup_store(folder: Path) -> Path:
    """Copy the embedded store ``folder`` beside itself (``<name>.backup-<UTC time>``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder.with_name(f"{folder.name}.backup-{stamp}")
    shutil.copytree(folder, target)
    return target


def older_models(store: GraphStore) -> list[tuple[str, int]]:
    """The complete models written in a format older than :data:`FORMAT_VERSION`."""
    found = []
    for row in store.list_models():
        model = store.describe_model(str(row["model_id"]))
        version = model_format_version(model)
        if version < FORMAT_VERSION and model.get("status") == "complete":
            found.append((str(row["model_id"]), version))
    return found


def upgrade_model(
    store: GraphStore,
    model_id: str,
    *,
    cache_dir: Path,
    device: str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> None:
    """Compute and store what format 2 adds to ``model_id`` (from its cache entry or its
    recorded training images), then mark the model format 2.

    Raises:
        InputError: neither the cache entry nor the training images can be found.
        ModelError: the CNN cannot be found at its recorded source, or its weights changed.
    """
    loaded = LoadedGraph.open(
        store, model_id, cache_dir=cache_dir, device=device, command="`explgraph store upgrade`"
    )
    features = loaded.mining_features(progress=progress)
    statistics = layer_statistics(features)
    layers = pd.DataFrame(
        [
            {"layer_id": layer_id(model_id, name), **stats}
            for name, stats in zip(loaded.layer_names, statistics, strict=True)
        ]
    )
    identity = identify(loaded.model, loaded.params.get("weights_arg")).to_json()
    store.write_nodes("Layer", layers)
    model = {
        "model_id": [model_id],
        "identity": [identity],
        "boxes": [mining_boxes(features.records)],
        "format_version": [FORMAT_VERSION],
    }
    store.write_nodes("Model", pd.DataFrame(model))  # last: the model now reads as format 2


def upgrade_store(
    store: GraphStore,
    *,
    statistics: bool,
    cache_dir: Path,
    device: str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> list[UpgradeLine]:
    """Upgrade every older model of ``store`` (with ``statistics``), or say what each lacks."""
    lines = []
    for model_id, version in older_models(store):
        if not statistics:
            lines.append(
                UpgradeLine(
                    model_id,
                    version,
                    version,
                    "lacks the statistics of its mining images: run `explgraph store upgrade "
                    "--statistics --cache-dir DIR` (DIR: the cache used when mining; without "
                    "its entry the recorded training images are read)",
                )
            )
            continue
        upgrade_model(store, model_id, cache_dir=cache_dir, device=device, progress=progress)
        log.info("upgraded %s from format %d", model_id, version)
        lines.append(UpgradeLine(model_id, version, FORMAT_VERSION, "upgraded"))
    if all(line.after == FORMAT_VERSION for line in lines):
        mark_store_format(store)
    return lines


__all__ = ["UpgradeLine", "backup_store", "older_models", "upgrade_model", "upgrade_store"]
