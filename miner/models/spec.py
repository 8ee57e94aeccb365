"""What a loaded model and its selected layers look like to the rest of the miner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerGeometry:
    """Where a conv layer's units sit in the input image.

    Map positions are ``(x, y)`` in map units, unit ``(0, 0)`` at the top-left. The centre of the
    receptive field of unit ``u`` along one axis is ``rf_offset + stride * u`` input pixels, in
    continuous coordinates where pixel ``i`` covers ``[i, i + 1)`` (as in :mod:`miner.data.images`;
    VGG-16 conv4_3: stride 8, rf_offset 4.0, rf_size 92). ``rf_size`` counts padding pixels.
    """

    name: str
    index: int  # 0 = the lowest selected layer
    channels: int
    height: int
    width: int
    stride: float
    rf_size: float
    rf_offset: float

    def to_pixels(self, units: torch.Tensor) -> torch.Tensor:
        """Map positions (any shape ending in 2, map units) to input-pixel positions."""
        return units * self.stride + self.rf_offset

    def to_units(self, pixels: torch.Tensor) -> torch.Tensor:
        """Input-pixel positions to map units (the inverse of :meth:`to_pixels`)."""
        return (pixels - self.rf_offset) / self.stride


@dataclass
class LoadedModel:
    """A CNN ready for feature extraction, with what is needed to key caches and stored graphs."""

    module: nn.Module
    name: str  # architecture name, e.g. "vgg16", "toy_vgg"
    source: str  # how the user named it: torchvision name, checkpoint path, or module:callable
    weights: str | None  # weights enum name, or the checkpoint file name
    fingerprint: str  # hash of the parameters: changes whenever the weights change
    input_size: int  # side of the square input in pixels
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    family: str = "generic"
    default_layers: list[str] = field(default_factory=list)
    classes: list[str] | None = None
    # The interpretable layer's spec (miner.models.interpretable) when trained with the filter loss.
    interpretable: dict[str, Any] | None = None
    # The file torchvision weights were read from: its cache, or an installed package.
    weights_file: str | None = None


__all__ = ["LayerGeometry", "LoadedModel"]
