"""The toy VGG-style CNN ("toy_vgg") that ``explgraph train`` fits to the synthetic parts dataset.

Shaped like VGG's upper half at a 96 px input: two single-conv stages, then two stages of two
convs each whose maps (24x24 and 12x12) are the default graph layers::

    block1_conv1 @96 -> block1_pool -> block2_conv1 @48 -> block2_pool
        -> block3_conv1, block3_conv2 @24 -> block3_pool
        -> block4_conv1, block4_conv2 @12 -> global average pool -> fc

Every conv is 3x3 with padding 1 and is followed by a ReLU (``block3_relu1`` ...). The module
names are Keras's VGG names because they are also the node names of ``get_graph_node_names``:
its tracer rewrites a name ending in ``_<digits>`` (``conv3_1`` would become ``conv3``), so the
VGG-paper names ``conv3_1`` ... are aliases (see :mod:`miner.models.layers`). Training uses
BatchNorm after each conv (``block3_bn1`` ...); :func:`fold_batch_norm` merges it into the conv
weights before the model is saved, so the saved net is a plain conv-ReLU net like VGG and its
conv outputs are the filter responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

TOY_ARCH = "toy_vgg"
DEFAULT_WIDTHS = (16, 32, 48, 64)
# (name, stage) of every conv, bottom to top; a pool follows the last conv of stages 1-3.
_CONVS = (
    ("block1_conv1", 0),
    ("block2_conv1", 1),
    ("block3_conv1", 2),
    ("block3_conv2", 2),
    ("block4_conv1", 3),
    ("block4_conv2", 3),
)
_POOL_AFTER = {
    "block1_conv1": "block1_pool",
    "block2_conv1": "block2_pool",
    "block3_conv2": "block3_pool",
}


def _bn(conv_name: str) -> str:
    return conv_name.replace("_conv", "_bn")


def _relu(conv_name: str) -> str:
    return conv_name.replace("_conv", "_relu")


class ToyVGG(nn.Module):
    """A six-conv VGG-style classifier (see the module docstring for the layout).

    Args:
        num_classes: number of output classes.
        widths: channels of the four stages.
        batch_norm: put a BatchNorm after every conv (for training; fold it before saving).
    """

    def __init__(
        self,
        num_classes: int = 4,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be four positive channel counts, got {tuple(widths)}")
        self.num_classes = num_classes
        self.widths = tuple(int(w) for w in widths)
        self.batch_norm = batch_norm
        in_channels = 3
        for name, stage in _CONVS:
            out_channels = self.widths[stage]
            self.add_module(name, nn.Conv2d(in_channels, out_channels, 3, padding=1))
            if batch_norm:
                self.add_module(_bn(name), nn.BatchNorm2d(out_channels))
            self.add_module(_relu(name), nn.ReLU(inplace=False))
            if name in _POOL_AFTER:
                self.add_module(_POOL_AFTER[name], nn.MaxPool2d(2))
            in_channels = out_channels
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)  # type: ignore[arg-type]
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of ``N x 3 x H x W`` images."""
        for name, _ in _CONVS:
            x = getattr(self, name)(x)
            if self.batch_norm:
                x = getattr(self, _bn(name))(x)
            x = getattr(self, _relu(name))(x)
            if name in _POOL_AFTER:
                x = getattr(self, _POOL_AFTER[name])(x)
        return self.fc(torch.flatten(self.gap(x), 1))

    def arch_kwargs(self) -> dict[str, object]:
        """The constructor arguments that rebuild this architecture (for checkpoints)."""
        return {"num_classes": self.num_classes, "widths": list(self.widths)}


def bundled_checkpoint() -> Path:
    """The trained toy CNN shipped with the package (``explgraph train`` reproduces it)."""
    return Path(__file__).resolve().parent.parent / "assets" / "toy_vgg.pt"


def build_toy_vgg(
    num_classes: int = 4, widths: Sequence[int] = DEFAULT_WIDTHS, batch_norm: bool = False
) -> ToyVGG:
    """A freshly initialised toy VGG (random weights)."""
    return ToyVGG(num_classes, widths, batch_norm)


@torch.no_grad()
def fold_batch_norm(model: ToyVGG) -> ToyVGG:
    """A BatchNorm-free copy of ``model`` that computes the same function in eval mode.

    Each BatchNorm (running statistics) is an affine map per channel, merged into the conv
    before it: ``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``.
    """
    folded = ToyVGG(model.num_classes, model.widths, batch_norm=False)
    folded.fc.load_state_dict(model.fc.state_dict())
    for name, _ in _CONVS:
        conv: nn.Conv2d = getattr(model, name)
        target: nn.Conv2d = getattr(folded, name)
        weight, bias = conv.weight, conv.bias
        assert bias is not None
        if model.batch_norm:
            norm: nn.BatchNorm2d = getattr(model, _bn(name))
            assert norm.running_var is not None and norm.running_mean is not None
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            weight = weight * scale[:, None, None, None]
            bias = (bias - norm.running_mean) * scale + norm.bias
        target.weight.copy_(weight)
        target.bias.copy_(bias)  # type: ignore[union-attr]
    return folded.eval()


__all__ = [
    "DEFAULT_WIDTHS",
    "TOY_ARCH",
    "ToyVGG",
    "build_toy_vgg",
    "bundled_checkpoint",
    "fold_batch_norm",
]
