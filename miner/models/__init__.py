"""The CNN side of the miner: load a model, name its layers, and place its units in the image.

Example:
    >>> from miner.models import load_model, resolve_layers, layer_geometry
    >>> model = load_model("vgg16", "IMAGENET1K_V1")
    >>> layers = resolve_layers(model)  # conv4_2, conv4_3, conv5_2, conv5_3 as node names
    >>> [(g.height, g.stride) for g in layer_geometry(model, layers)]
    [(28, 8.0), (28, 8.0), (14, 16.0), (14, 16.0)]
"""

from miner.models.checkpoint import read_checkpoint, save_checkpoint
from miner.models.geometry import layer_geometry
from miner.models.layers import (
    conv_layer_names,
    default_layers,
    layer_aliases,
    model_family,
    resolve_layers,
)
from miner.models.loading import fingerprint, load_model, resolve_device
from miner.models.spec import LayerGeometry, LoadedModel
from miner.models.toy import TOY_ARCH, ToyVGG, build_toy_vgg

__all__ = [
    "TOY_ARCH",
    "LayerGeometry",
    "LoadedModel",
    "ToyVGG",
    "build_toy_vgg",
    "conv_layer_names",
    "default_layers",
    "fingerprint",
    "layer_aliases",
    "layer_geometry",
    "load_model",
    "model_family",
    "read_checkpoint",
    "resolve_device",
    "resolve_layers",
    "save_checkpoint",
]
