"""A small graph mined end to end (synthetic data, bundled toy CNN), shared by tests of the
features built on top of mining: queries, And-Or graphs, explanation, comparison.

Mining takes a while even when small, so the fixture in ``tests/conftest.py`` builds it once per
test session and tests must not change it (copy the store folder if a test writes).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from explgraph.workflows.mine import MineRequest, run_mine
from explgraph.workflows.toy import TOY_LABEL, toy_request
from miner.data.synthetic import write_synthetic
from miner.models.toy import bundled_checkpoint
from tests.helpers.stores import env_settings

TOY_IMAGES = 96  # all categories; a quarter are birds, three quarters of those train
TOY_ITERATIONS = 3
#: a second toy CNN, trained from another seed (how: tests/integration/test_compare.py)
SEED1_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "toy_vgg_seed1.pt"
SEED1_ID = "toy_vgg_seed1-bird"


@dataclass(frozen=True)
class MinedToy:
    """Where the mined toy graph lives."""

    store_spec: str  # an embedded store folder
    model_id: str
    data_dir: Path  # synthetic images + annotations.json
    cache_dir: Path  # feature cache and learning checkpoints
    checkpoint: Path  # the CNN
    seed: int = 0

    def copy_store(self, target: Path) -> str:
        """A private copy of the store for a test that writes."""
        shutil.copytree(self.store_spec, target)
        return str(target)

    def request(
        self, *, checkpoint: Path | None = None, model_id: str | None = None
    ) -> MineRequest:
        """The request this graph was mined with, or another CNN's on the same images and cache."""
        request = toy_request(
            self.data_dir,
            self.cache_dir,
            iterations=TOY_ITERATIONS,
            seed=self.seed,
            model_id=model_id or self.model_id,
            device="cpu",
        )
        return replace(request, model=str(checkpoint or self.checkpoint))

    def mine_into(
        self, store_spec: str, *, checkpoint: Path | None = None, model_id: str | None = None
    ) -> None:
        """Mine into ``store_spec`` (any engine) as :meth:`request` says; the shared cache holds
        the features and learning checkpoints, so for this graph only the write is paid."""
        request = self.request(checkpoint=checkpoint, model_id=model_id)
        run_mine(request, store_spec, store_settings=env_settings())


def mine_toy(root: Path, *, model_id: str = "toy_vgg-bird", seed: int = 0) -> MinedToy:
    """Generate the data and mine the toy CNN's graph of birds into a store below ``root``."""
    data = root / "synth"
    if not (data / "annotations.json").exists():
        write_synthetic(data, TOY_IMAGES, size=128, seed=0)
    store = root / "store"
    mined = MinedToy(str(store), model_id, data, root / "cache", bundled_checkpoint(), seed)
    mined.mine_into(str(store))
    return mined


__all__ = ["SEED1_CHECKPOINT", "SEED1_ID", "TOY_ITERATIONS", "TOY_LABEL", "MinedToy", "mine_toy"]
