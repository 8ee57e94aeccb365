"""The toy run: the bundled toy CNN mined on the synthetic parts dataset.

``explgraph demo``, the tests' shared mined graph and the benchmarks all mine it the same way.
"""

from __future__ import annotations

from pathlib import Path

from explgraph.workflows.mine.request import MineRequest
from miner.models.toy import bundled_checkpoint

TOY_LABEL = "bird"


def toy_request(
    data: Path,
    cache_dir: Path,
    *,
    iterations: int,
    seed: int = 0,
    label: str = TOY_LABEL,
    model_id: str | None = None,
    device: str = "auto",
) -> MineRequest:
    """Mine the bundled toy CNN on the training images of ``label`` in the synthetic set ``data``
    (model id ``toy_vgg-<label>`` unless given)."""
    return MineRequest(
        model=str(bundled_checkpoint()),
        images=data,
        cache_dir=cache_dir,
        label=label,
        split="train",
        model_id=model_id or f"toy_vgg-{label}",
        device=device,
        settings_overrides={"iterations": iterations, "seed": seed},
    )


__all__ = ["TOY_LABEL", "toy_request"]
