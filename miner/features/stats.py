"""Streamed per-unit statistics of raw responses, for the std of docs/method.md §2.

Each batch's mean and variance are taken in float32 (a two-pass reduction over a few dozen
values per unit) and merged into float64 running moments with Chan et al.'s pairwise update,
so one pass over any number of images gives the std without keeping the maps, without the
cancellation of a raw sum-of-squares formula, and at a fraction of the cost of converting each
batch to float64.
"""

from __future__ import annotations

import numpy as np
import torch

# A unit whose std is below this fraction of its filter's mean std is treated as having
# this floor: such units (mostly padded borders, dead positions) would otherwise turn tiny
# responses into huge masses.
STD_FLOOR = 1e-2


class RunningMoments:
    """Per-unit count, mean and sum of squared deviations of a stream of ``[b, C, H, W]``."""

    def __init__(self) -> None:
        """Start empty; the shape and device are taken from the first batch."""
        self.count = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> None:
        """Add a batch of raw (not ReLU'd) responses."""
        size = batch.shape[0]
        if size == 0:
            return
        variance, mean = torch.var_mean(batch.detach().float(), dim=0, correction=0)
        mean64 = mean.to(torch.float64)
        m2 = variance.to(torch.float64).mul_(size)
        if self._mean is None or self._m2 is None:
            self._mean, self._m2, self.count = mean64, m2, size
            return
        total = self.count + size
        delta = mean64 - self._mean
        self._mean += delta * (size / total)
        self._m2 += m2 + delta.square_() * (self.count * size / total)
        self.count = total

    def std(self) -> np.ndarray:
        """Population std per unit, ``float64 [C, H, W]`` (zeros for a single sample)."""
        if self._m2 is None or self.count == 0:
            raise ValueError("no batches were added")
        return (self._m2 / self.count).clamp_min_(0.0).sqrt_().cpu().numpy()


def floored_std(std: np.ndarray, floor: float = STD_FLOOR) -> np.ndarray:
    """``std`` with every unit raised to at least ``floor`` times its filter's mean std.

    A filter whose std is zero everywhere (constant response) falls back to the layer's mean
    std, and a layer that is constant everywhere to 1, so the division is always defined.
    """
    std = np.asarray(std, dtype=np.float64)
    per_filter = std.reshape(std.shape[0], -1).mean(axis=1)
    layer_mean = float(std.mean())
    fallback = layer_mean if layer_mean > 0 else 1.0
    per_filter = np.where(per_filter > 0, per_filter, fallback)
    limit = (floor * per_filter)[:, None, None]
    # A filter with zero std everywhere gets the full fallback, not a fraction of it.
    dead = std.reshape(std.shape[0], -1).max(axis=1) == 0
    limit[dead] = fallback
    return np.maximum(std, limit).astype(np.float32)


__all__ = ["STD_FLOOR", "RunningMoments", "floored_std"]
