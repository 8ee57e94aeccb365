"""The explainer's checkpoint file: one format for the per-epoch checkpoints and the final file.

Format (a dict saved with :func:`torch.save`, readable with ``weights_only=True``)::

    {"format": "explgraph-explainer", "version": 1,
     "spec": ExplainerSpec.to_dict(), "state_dict": {...},
     "performer": {"source", "weights", "name", "fingerprint", "input_size", "layer", "module"},
     "config": ExplainerConfig.to_dict(), "data": {...}, "history": [{...} per epoch],
     "epoch": finished epochs, "step": optimiser steps,
     "optimiser": AdamW state, "rng": {"torch": ByteTensor, "batches": ByteTensor}}

Files are written next to their destination and renamed into place, so a crash never leaves a
truncated checkpoint behind.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explgraph.core.errors import ModelError
from miner.explainer.network import Explainer, ExplainerSpec
from miner.models.checkpoint import unreadable_reason

EXPLAINER_FORMAT = "explgraph-explainer"
EXPLAINER_VERSION = 1


@dataclass
class ExplainerCheckpoint:
    """What an explainer file holds (see the module docstring)."""

    spec: ExplainerSpec
    state_dict: dict[str, torch.Tensor]
    performer: dict[str, Any]
    config: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    optimiser: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, torch.Tensor] = field(default_factory=dict)

    def explainer(self, device: torch.device | str = "cpu") -> Explainer:
        """The explainer with these weights, in eval mode.

        Raises:
            ModelError: the weights do not fit the recorded architecture.
        """
        model = Explainer(self.spec)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ModelError(f"the explainer's weights do not fit its spec: {first}") from error
        return model.to(device).eval()


def save_explainer(path: Path | str, checkpoint: ExplainerCheckpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": EXPLAINER_FORMAT,
        "version": EXPLAINER_VERSION,
        "spec": checkpoint.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "performer": dict(checkpoint.performer),
        "config": dict(checkpoint.config),
        "data": dict(checkpoint.data),
        "history": list(checkpoint.history),
        "epoch": int(checkpoint.epoch),
        "step": int(checkpoint.step),
        "optimiser": checkpoint.optimiser,
        "rng": dict(checkpoint.rng),
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def _load(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ModelError(f"explainer checkpoint {path} does not exist; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        reason = unreadable_reason(error)
        raise ModelError(f"cannot read explainer checkpoint {path}: {reason}") from error
    if not isinstance(obj, Mapping) or obj.get("format") != EXPLAINER_FORMAT:
        raise ModelError(
            f"{path} is not an explainer checkpoint; make one with `explgraph explain-net train`"
        )
    if obj.get("version") != EXPLAINER_VERSION:
        raise ModelError(
            f"explainer checkpoint {path} has version {obj.get('version')}, this explgraph reads "
            f"version {EXPLAINER_VERSION}; train it again"
        )
    return obj


def read_explainer(path: Path | str) -> ExplainerCheckpoint:
    """Read an explainer file without building the network.

    Raises:
        ModelError: missing, unreadable, not an explainer file, or another format version.
    """
    obj = _load(Path(path))
    return ExplainerCheckpoint(
        spec=ExplainerSpec.from_dict(obj["spec"]),
        state_dict=dict(obj["state_dict"]),
        performer=dict(obj.get("performer") or {}),
        config=dict(obj.get("config") or {}),
        data=dict(obj.get("data") or {}),
        history=list(obj.get("history") or []),
        epoch=int(obj.get("epoch", 0)),
        step=int(obj.get("step", 0)),
        optimiser=dict(obj.get("optimiser") or {}),
        rng=dict(obj.get("rng") or {}),
    )


__all__ = [
    "EXPLAINER_FORMAT",
    "EXPLAINER_VERSION",
    "ExplainerCheckpoint",
    "read_explainer",
    "save_explainer",
]
