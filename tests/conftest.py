"""Shared fixtures: every test starts from seeded random number generators."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

if TYPE_CHECKING:
    from tests.helpers.mined import MinedToy


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
