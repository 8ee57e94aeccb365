"""A small graph mined end to end (synthetic data, bundled toy CNN), shared by tests of the
features built on top of mining: queries, And-Or graphs, explanation, comparison.

Mining takes a while even when small, so the fixture in ``tests/conftest.py`` builds it once per
test session and tests must not change it (copy the store folder if a test writes).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from explgraph.workflows.mine import run_mine
from explgraph.workflows.toy import TOY_LABEL, toy_request
from miner.data.synthetic import write_synthetic
from miner.models.toy import bundled_checkpoint

TOY_IMAGES = 96  # all categories; a quarter are birds, three quarters of those train
TOY_ITERATIONS = 3


@dataclass(frozen=True)
class MinedToy:
    """Where the mined toy graph lives."""

    store_spec: str  # an embedded store folder
    model_id: str
    data_dir: Path  # synthetic images + annotations.json
    cache_dir: Path  # feature cache and learning checkpoints
    checkpoint: Path  # the CNN

    def copy_store(self, target: Path) -> str:
        """A private copy of the store for a test that writes."""
        shutil.copytree(self.store_spec, target)
        return str(target)


def mine_toy(root: Path, *, model_id: str = "toy_vgg-bird", seed: int = 0) -> MinedToy:
    """Generate the data and mine the toy CNN's graph of birds into a store below ``root``."""
    data = root / "synth"
    if not (data / "annotations.json").exists():
        write_synthetic(data, TOY_IMAGES, size=128, seed=0)
    store = root / "store"
    request = toy_request(
        data, root / "cache", iterations=TOY_ITERATIONS, seed=seed, model_id=model_id, device="cpu"
    )
    run_mine(request, str(store))
    return MinedToy(str(store), model_id, data, root / "cache", bundled_checkpoint())


__all__ = ["TOY_LABEL", "MinedToy", "mine_toy"]
