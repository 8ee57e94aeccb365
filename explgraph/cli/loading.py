"""What the commands that read a mined graph open first: the graph, and the images to use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from explgraph.cli.environment import default_cache_dir

if TYPE_CHECKING:
    from graphstore import GraphStore
    from miner.data.records import ImageRecord
    from queries.loaded import LoadedGraph


def open_graph(
    store: GraphStore, model_id: str, *, cache_dir: Path | None, device: str
) -> LoadedGraph:
    """``model_id`` read from ``store``, its features cached under ``--cache-dir`` (default: the
    environment's cache folder).

    Raises:
        UnknownModel, StoreError: no such (complete) model. ModelError: an unknown device.
    """
    from queries.loaded import LoadedGraph

    return LoadedGraph.open(
        store, model_id, cache_dir=cache_dir or default_cache_dir(), device=device
    )


def chosen_label(label: str | None, loaded: LoadedGraph) -> str | None:
    """``--label`` when given, else the label the graph was mined on."""
    return label if label is not None else loaded.params.get("label")


def annotated_records(
    annotations: Path, *, label: str | None, split: str | None
) -> list[ImageRecord]:
    """The images of ``annotations`` (a .json file or an annotated folder) with ``label`` and
    ``split`` (``None``: any)."""
    from miner.data.folder import load_dataset

    dataset = load_dataset(annotations)
    return list(dataset.select(split=split, label=label).records)


__all__ = ["annotated_records", "chosen_label", "open_graph"]
