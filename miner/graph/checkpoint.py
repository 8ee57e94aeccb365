"""Per-layer checkpoints, so an interrupted learning run resumes from its last finished layer.

A checkpoint folder holds one file per finished layer under a sub-folder named by a digest of the
features' identity, the layer geometry and every setting that changes the result (chunk sizes do
not). Only rank 0 writes; files are written to a temporary name and renamed, so a kill never
leaves a half-written layer behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from explgraph.core.diskspace import MB, free_bytes, is_no_space, no_space_message
from explgraph.core.errors import MiningError
from explgraph.core.faults import fault_point
from miner.graph import distributed
from miner.graph.settings import GraphSettings
from miner.graph.types import LayerPatterns
from miner.models.spec import LayerGeometry

_IRRELEVANT = ("chunk_size", "work_elements")

log = logging.getLogger(__name__)


def run_digest(
    key: str, settings: GraphSettings, layers: list[LayerGeometry], num_images: int
) -> str:
    """Hex digest naming one learning run's checkpoints."""
    values = {k: v for k, v in settings.to_dict().items() if k not in _IRRELEVANT}
    blob = json.dumps(
        {"key": key, "settings": values, "layers": [vars(g) for g in layers], "n": num_images},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class LayerCheckpoints:
    """Read and write the finished layers of one run."""

    def __init__(self, directory: str | Path, digest: str) -> None:
        self.folder = Path(directory) / f"graph-{digest}"
        self.digest = digest

    def _path(self, layer: int) -> Path:
        return self.folder / f"layer{layer}.pt"

    def load(self, layer: int) -> tuple[LayerPatterns, torch.Tensor] | None:
        """The finished layer and the flips of all images, or ``None`` if not finished."""
        path = self._path(layer)
        if not path.exists():
            return None
        try:
            state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as error:
            # a damaged file is treated as unfinished work: the layer is redone
            log.warning(
                "checkpoint %s is unreadable (%s); layer %d is learned again", path, error, layer
            )
            return None
        if state.get("digest") != self.digest:
            log.warning(
                "checkpoint %s belongs to another run; layer %d is learned again", path, layer
            )
            return None
        return LayerPatterns.from_state(state["patterns"]), state["flips"]

    def save(self, layer: int, patterns: LayerPatterns, flips: torch.Tensor) -> None:
        """Store a finished layer (rank 0 only; every rank waits for it)."""
        if distributed.world()[0] == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self._path(layer).with_suffix(".tmp")
            state = {
                "digest": self.digest,
                "patterns": patterns.to("cpu").to_state(),
                "flips": flips.cpu(),
            }
            self._write(layer, state, tmp)
            log.debug("layer %d checkpointed in %s", layer, self._path(layer))
            fault_point("learn.checkpoint")
        distributed.barrier()

    def _write(self, layer: int, state: dict[str, Any], tmp: Path) -> None:
        """``torch.save`` to ``tmp``, renamed into place; a full disk is one line (torch says
        only ``unexpected pos …``), and no partial file is left."""
        try:
            torch.save(state, tmp)
            os.replace(tmp, self._path(layer))
        except (OSError, RuntimeError) as error:
            tmp.unlink(missing_ok=True)
            needed = _state_bytes(state)
            free = free_bytes(self.folder)
            if is_no_space(error) or (free is not None and free < needed + MB):
                raise MiningError(
                    no_space_message(
                        self.folder, needed=needed, what=f"the checkpoint of layer {layer}"
                    )
                ) from None
            raise


def _state_bytes(value: Any) -> int:
    """The bytes of every tensor in a checkpoint's state (what its file needs, near enough)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_state_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_state_bytes(item) for item in value)
    return 0


__all__ = ["LayerCheckpoints", "run_digest"]
