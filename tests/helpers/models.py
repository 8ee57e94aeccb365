"""Tiny CNNs for tests, each small enough to run in milliseconds on the CPU.

``TinyNet`` at a 32 px input has this hand-computed geometry (pixel ``i`` covers ``[i, i+1)``):

=========  =====  ======  =======  =========
node       map    stride  rf size  rf offset
=========  =====  ======  =======  =========
conv_a     32     1       3        0.5
pool       16     2       4        1.0
conv_b     14     2       8        3.0
conv_c     7      4       12       3.0
=========  =====  ======  =======  =========
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from miner.models.layers import default_layers, model_family
from miner.models.loading import fingerprint
from miner.models.spec import LoadedModel

TINY_INPUT_SIZE = 32
TINY_GEOMETRY = {
    # node: (map side, stride, rf size, rf offset)
    "conv_a": (32, 1.0, 3.0, 0.5),
    "pool": (16, 2.0, 4.0, 1.0),
    "conv_b": (14, 2.0, 8.0, 3.0),
    "conv_c": (7, 4.0, 12.0, 3.0),
}


class TinyNet(nn.Module):
    """conv 3x3 p1, ReLU, maxpool 2, conv 3x3 p0, ReLU, conv 3x3 s2 p1, ReLU, GAP, fc, ReLU."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.relu_a = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv_b = nn.Conv2d(4, 6, 3)
        self.relu_b = nn.ReLU()
        self.conv_c = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.relu_c = nn.ReLU()
        self.head = nn.Linear(8, num_classes)
        self.head_relu = nn.ReLU()  # a classifier ReLU: not a conv layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu_a(self.conv_a(x)))
        x = self.relu_c(self.conv_c(self.relu_b(self.conv_b(x))))
        return self.head_relu(self.head(x.mean(dim=(2, 3))))


class ResidualNet(nn.Module):
    """A stem and one residual block with BatchNorm: conv -> BN -> ReLU, plus a conv shortcut.

    The shortcut (4x4, stride 2, pad 1) sees more than the body (3x3, stride 2, pad 1), so the
    join's receptive field is the shortcut's: 6 px centred at 1.0 (the body's is 5 px at 0.5).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(4)
        self.stem_relu = nn.ReLU()
        self.body = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.body_bn = nn.BatchNorm2d(4)
        self.shortcut = nn.Conv2d(4, 4, 4, stride=2, padding=1)
        self.out_relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(x)))
        x = self.out_relu(self.body_bn(self.body(x)) + self.shortcut(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class UpsampleNet(nn.Module):
    """A net whose top layer comes after an upsampling, which the graph analysis cannot place."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.conv_b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_b(self.pool(torch.relu(self.conv_a(x))))
        return torch.relu(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def tiny_net() -> TinyNet:
    """A seeded TinyNet (the ``module:callable`` target used by the loading tests)."""
    torch.manual_seed(0)
    return TinyNet()


def loaded_model(
    module: nn.Module, input_size: int = TINY_INPUT_SIZE, name: str | None = None
) -> LoadedModel:
    """Wrap ``module`` (put in eval mode) as a LoadedModel without going through load_model."""
    module.eval()
    return LoadedModel(
        module=module,
        name=name or type(module).__name__,
        source="tests.helpers.models",
        weights="random",
        fingerprint=fingerprint(module),
        input_size=input_size,
        family=model_family(module),
        default_layers=default_layers(module, input_size),
    )


__all__ = [
    "TINY_GEOMETRY",
    "TINY_INPUT_SIZE",
    "ResidualNet",
    "TinyNet",
    "UpsampleNet",
    "loaded_model",
    "tiny_net",
]
