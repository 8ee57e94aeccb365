"""The project's checkpoint file: architecture, weights, classes and input size in one file.

Format (a dict saved with :func:`torch.save`, readable with ``weights_only=True``)::

    {"format": "explgraph-checkpoint", "version": 1,
     "arch": "toy_vgg" | a torchvision model name, "arch_kwargs": {...},
     "state_dict": {...}, "classes": [...], "input_size": 96,
     "mean": [r, g, b], "std": [r, g, b], "meta": {...},
     "interpretable": None | {"layer": ..., "activation": ..., "height": ..., "width": ...,
                              "beta": ..., "tau": ..., "alpha": ..., "weight": ...}}

``interpretable`` (optional, absent in older files) marks a model trained with the filter loss
of :mod:`miner.models.interpretable`: loading wraps the named activation with the part-template
mask again (the mask has no weights, so the state dict is the plain architecture's).

A file without ``"format"`` is treated as a plain state dict (``{name: tensor}``, or one nested
under ``"state_dict"`` / ``"model"`` as training frameworks write it), which needs the
architecture named separately.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explgraph.core.errors import ModelError

CHECKPOINT_FORMAT = "explgraph-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


@dataclass
class Checkpoint:
    """What a checkpoint file holds; ``arch`` is ``None`` for a plain state dict."""

    state_dict: dict[str, torch.Tensor]
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    interpretable: dict[str, Any] | None = None


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    *,
    arch: str,
    arch_kwargs: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    input_size: int,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    meta: Mapping[str, Any] | None = None,
    interpretable: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with everything :func:`miner.models.load_model` needs.

    The file is written next to its destination and renamed into place, so a crash never leaves
    a truncated checkpoint behind. ``interpretable`` is the spec of an interpretable layer
    (:meth:`miner.models.interpretable.InterpretableSpec.to_dict`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs or {}),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "classes": list(classes) if classes is not None else None,
        "input_size": int(input_size),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "meta": dict(meta or {}),
        "interpretable": dict(interpretable) if interpretable is not None else None,
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_checkpoint(path: Path | str) -> Checkpoint:
    """Read a checkpoint file (ours or a plain state dict) without building a model.

    Raises:
        ModelError: the file is missing, unreadable, or holds something other than weights.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelError(
            f"cannot read checkpoint {path}: {unreadable_reason(error)}; it must be a state dict "
            "or an explgraph checkpoint saved with torch.save (whole pickled models are not loaded)"
        ) from error
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("version")
        if version != CHECKPOINT_VERSION:
            raise ModelError(
                f"checkpoint {path} has format version {version}, this explgraph reads "
                f"version {CHECKPOINT_VERSION}; re-create it with `explgraph train`"
            )
        mean, std = obj.get("mean"), obj.get("std")
        return Checkpoint(
            state_dict=dict(obj["state_dict"]),
            arch=str(obj["arch"]),
            arch_kwargs=dict(obj.get("arch_kwargs") or {}),
            classes=list(obj["classes"]) if obj.get("classes") is not None else None,
            input_size=int(obj["input_size"]) if obj.get("input_size") else None,
            mean=(float(mean[0]), float(mean[1]), float(mean[2])) if mean else None,
            std=(float(std[0]), float(std[1]), float(std[2])) if std else None,
            meta=dict(obj.get("meta") or {}),
            interpretable=dict(obj["interpretable"]) if obj.get("interpretable") else None,
        )
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if _is_state_dict(obj.get(key)):
                obj = obj[key]
                break
    if _is_state_dict(obj):
        return Checkpoint(state_dict=dict(obj))
    raise ModelError(
        f"checkpoint {path} holds no state dict (found {type(obj).__name__}); save the weights "
        "with torch.save(model.state_dict(), path)"
    )


def unreadable_reason(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in a few words of our own.

    Torch's refusal of a pickle that holds code advises loading it with ``weights_only=False``;
    a tool should never repeat that advice about a file it refused for safety.
    """
    if isinstance(error, pickle.UnpicklingError):
        return (
            "it holds Python objects besides tensors, which are never loaded (they could run code)"
        )
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _first(names: Sequence[str], count: int = 3) -> str:
    shown = ", ".join(names[:count])
    return shown + (f", ... ({len(names) - count} more)" if len(names) > count else "")


def state_dict_mismatch(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Why ``state_dict`` does not fit ``model`` (missing, unexpected, misshapen keys), or None."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {list(state_dict[k].shape)} vs {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape (file vs model: {_first(wrong)})")
    return "; ".join(problems) or None


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` strictly.

    Raises:
        ModelError: one line naming the first missing, unexpected and wrong-shape keys.
    """
    problem = state_dict_mismatch(model, state_dict)
    if problem is not None:
        raise ModelError(
            f"weights in {source} do not fit {type(model).__name__}: {problem}; check that the "
            "checkpoint was saved from this architecture"
        )
    model.load_state_dict(state_dict, strict=True)


__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_SUFFIXES",
    "Checkpoint",
    "load_weights",
    "read_checkpoint",
    "save_checkpoint",
    "state_dict_mismatch",
    "unreadable_reason",
]
