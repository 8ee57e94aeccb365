"""Streamed per-unit std and its floor (docs/method.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miner.features.stats import STD_FLOOR, RunningMoments, floored_std


def test_streamed_std_matches_numpy_over_uneven_batches() -> None:
    data = torch.randn(37, 3, 4, 5, dtype=torch.float32) * 3.0 + 7.0
    moments = RunningMoments()
    for start, stop in ((0, 5), (5, 6), (6, 30), (30, 37)):
        moments.update(data[start:stop])
    assert moments.count == 37
    np.testing.assert_allclose(moments.std(), data.double().numpy().std(axis=0), rtol=1e-5)


def test_large_offset_does_not_cancel_the_variance() -> None:
    # A naive float sum-of-squares loses a small spread on top of a large mean.
    data = torch.randn(64, 2, 3, 3) * 1e-2 + 1e3
    moments = RunningMoments()
    for start in range(0, 64, 16):
        moments.update(data[start : start + 16])
    np.testing.assert_allclose(moments.std(), data.double().numpy().std(axis=0), rtol=1e-2)


def test_std_before_any_batch_is_an_error() -> None:
    with pytest.raises(ValueError):
        RunningMoments().std()


def test_floor_raises_near_zero_units_to_a_fraction_of_their_filter_mean() -> None:
    std = np.ones((2, 3, 3))
    std[0, 0, 0] = 1e-9  # a near-dead unit in a live filter
    std[1] *= 4.0
    floored = floored_std(std)
    per_filter_mean = std.reshape(2, -1).mean(axis=1)
    assert floored[0, 0, 0] == pytest.approx(STD_FLOOR * per_filter_mean[0])
    np.testing.assert_array_equal(floored[1], std[1].astype(np.float32))
    assert floored.dtype == np.float32


def test_dead_filter_and_constant_layer_get_a_usable_floor() -> None:
    std = np.zeros((2, 2, 2))
    std[0] = 2.0
    floored = floored_std(std)
    assert np.all(floored[1] == pytest.approx(std.mean()))  # dead filter: the layer's mean
    assert np.all(floored_std(np.zeros((1, 2, 2))) == 1.0)  # nothing varies: no scaling
