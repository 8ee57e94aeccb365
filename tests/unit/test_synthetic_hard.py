"""The hard option of the synthetic dataset: loose boxes, occluders, more rotation."""

from __future__ import annotations

import numpy as np
import pytest

from explgraph.core.errors import InputError
from miner.data.synthetic import render_sample
from miner.data.synthetic.render import HARD


def test_hard_is_deterministic_and_differs_from_normal() -> None:
    a = render_sample(3, 96, 11, difficulty="hard")
    b = render_sample(3, 96, 11, difficulty="hard")
    assert np.array_equal(a.image, b.image) and a.box == b.box and a.parts == b.parts
    normal = render_sample(3, 96, 11)
    assert a.label == normal.label and not np.array_equal(a.image, normal.image)


def test_hard_boxes_are_loose_and_occluded_keypoints_hidden() -> None:
    loose, hidden = 0, 0
    for index in range(24):
        sample = render_sample(index, 96, 12, difficulty="hard")
        x0, y0, x1, y1 = sample.box
        ys, xs = np.nonzero(sample.mask)
        # the box holds every visible object pixel, and is within the image
        assert 0 <= x0 <= xs.min() and xs.max() < x1 <= 96
        assert 0 <= y0 <= ys.min() and ys.max() < y1 <= 96
        if x0 < xs.min() - 1 or y0 < ys.min() - 1:
            loose += 1
        hidden += sum(not point.visible for point in sample.parts.values())
        assert abs(sample.angle) <= HARD.max_rotation
    assert loose >= 12  # most boxes carry a margin
    assert hidden >= 1  # some keypoints are covered


def test_unknown_difficulty_is_rejected() -> None:
    with pytest.raises(InputError, match="difficulty"):
        render_sample(0, 64, 0, difficulty="extreme")
