"""What the commands that read a mined graph open first: the graph, and the images to use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from explgraph.cli.environment import default_cache_dir, model_search_path

if TYPE_CHECKING:
    from graphstore import GraphStore
    from miner.data.records import ImageRecord
    from miner.models.identity import CheckpointSearch
    from queries.loaded import LoadedGraph


def open_graph(
    store: GraphStore,
    model_id: str,
    *,
    cache_dir: Path | None,
    device: str,
    model_file: Path | Sequence[Path] | None = None,
    ctx: typer.Context | None = None,
) -> LoadedGraph:
    """``model_id`` read from ``store``, its features cached under ``--cache-dir`` (default: the
    environment's cache folder), its CNN checkpoint found as :func:`checkpoint_search` says.
    ``ctx`` is the running command's: its name is the one a missing statistic's error names.

    Raises:
        UnknownModel, StoreError: no such (complete) model. ModelError: an unknown device.
    """
    from queries.loaded import LoadedGraph

    return LoadedGraph.open(
        store,
        model_id,
        cache_dir=cache_dir or default_cache_dir(),
        device=device,
        search=checkpoint_search(store.spec, model_file),
        command=_shown_command(ctx.command_path if ctx is not None else ""),
    )


def _shown_command(path: str) -> str:
    """``explgraph evaluate parts`` in backticks, whatever the program was called."""
    words = path.split()[1:]
    return f"`explgraph {' '.join(words)}`" if words else "this command"


def checkpoint_search(
    store_spec: str, model_file: Path | Sequence[Path] | None
) -> CheckpointSearch:
    """Where a moved checkpoint is looked for (:func:`checkpoint_folders`). One ``--model-file``
    must be the checkpoint; several (``compare``) may each belong to one of the models."""
    from miner.models.identity import CheckpointSearch

    files = (model_file,) if isinstance(model_file, Path) else tuple(model_file or ())
    folders = checkpoint_folders(store_spec)
    return CheckpointSearch(files, folders, strict=isinstance(model_file, Path))


def checkpoint_folders(store_spec: str) -> tuple[Path, ...]:
    """The folders searched for a checkpoint by its file name after ``--model-file``: beside
    an embedded store (its folder and the folder holding it), then ``$EXPLGRAPH_MODEL_PATH``."""
    from graphstore.address import parse_store_address

    address = parse_store_address(store_spec)
    beside = [address.path, address.path.parent] if address.path is not None else []
    return tuple([*beside, *model_search_path()])


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


__all__ = [
    "annotated_records",
    "checkpoint_folders",
    "checkpoint_search",
    "chosen_label",
    "open_graph",
]
