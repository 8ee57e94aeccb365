"""Best-landmark stability: each pattern scored on the landmark it tracks best, beside its
frozen self, a fixed point and the perfect detector, split into centre and off-centre."""

from __future__ import annotations

import math

import pytest
import torch

from queries.best_landmark import best_landmarks, centre_landmarks, pooled, summarise
from queries.streaming import TopKAccumulator

NAN = float("nan")


def test_each_pattern_is_scored_at_its_own_best_landmark() -> None:
    # 3 landmarks x 4 patterns; pattern 2 has no measurable landmark
    spreads = torch.tensor(
        [[0.10, 0.30, NAN, 0.05], [0.20, 0.08, NAN, 0.40], [NAN, 0.50, NAN, 0.30]]
    )
    frozen = torch.tensor(
        [[0.12, 0.25, 0.1, 0.30], [0.15, 0.10, 0.1, 0.02], [0.11, 0.60, 0.1, 0.20]]
    )
    fixed = torch.tensor([0.2, 0.3, 0.4])
    centre = torch.tensor([True, False, False])
    ranked = torch.tensor([3, 2, 1, 0])
    values = best_landmarks(spreads, frozen, fixed, ranked, centre, n_top=10)
    assert values.landmark.tolist() == [0, 1, 0]  # patterns 3, 1, 0 in ranked order
    assert values.patterns.tolist() == pytest.approx([0.05, 0.08, 0.10])
    assert values.frozen_prior.tolist() == pytest.approx([0.30, 0.10, 0.12])
    assert values.frozen_prior_own_best.tolist() == pytest.approx([0.02, 0.10, 0.11])
    assert values.fixed_point.tolist() == pytest.approx([0.2, 0.3, 0.2])
    assert values.centre.tolist() == [True, False, True]
    top_two = best_landmarks(spreads, frozen, fixed, ranked, centre, n_top=2)
    assert top_two.patterns.tolist() == pytest.approx([0.05, 0.08])


def test_groups_report_means_ratio_and_the_share_beating_their_frozen_self() -> None:
    spreads = torch.tensor([[0.05, 0.20, 0.10], [0.30, 0.08, 0.40]])
    frozen = torch.tensor([[0.04, 0.10, 0.20], [0.10, 0.16, 0.10]])
    centre = torch.tensor([True, False])
    values = best_landmarks(spreads, frozen, torch.tensor([0.1, 0.2]), torch.arange(3), centre, 3)
    table = summarise(values)
    # centre: patterns 0 (0.05 vs 0.04) and 2 (0.10 vs 0.20); off-centre: pattern 1 (0.08 vs 0.16)
    assert table["centre"]["n_patterns"] == 2 and table["off_centre"]["n_patterns"] == 1
    assert table["centre"]["patterns"] == pytest.approx(0.075)
    assert table["centre"]["frozen_prior"] == pytest.approx(0.12)
    assert table["centre"]["beat_frozen"] == 0.5
    assert table["off_centre"]["patterns_over_frozen"] == pytest.approx(0.5)
    assert table["off_centre"]["beat_frozen"] == 1.0
    assert table["all"]["n_patterns"] == 3 and table["all"]["perfect_part_detector"] == 0.0
    assert table["off_centre"]["fixed_point"] == pytest.approx(0.2)
    both = summarise(pooled([values, values]))
    assert both["all"]["n_patterns"] == 6
    assert both["all"]["patterns"] == pytest.approx(table["all"]["patterns"])
    empty = summarise(best_landmarks(spreads, frozen, torch.zeros(2), torch.arange(3),
                                     torch.tensor([False, False]), 3))  # fmt: skip
    assert empty["centre"] == {"n_patterns": 0}


def test_the_centre_landmark_is_the_body_or_the_one_nearest_the_crop_centre() -> None:
    landmarks = torch.tensor([[[10.0, 10.0], [50.0, 52.0], [90.0, 20.0]]]).expand(3, 3, 2)
    visible = torch.ones(3, 3, dtype=torch.bool)
    assert centre_landmarks(["head", "body", "tail"], landmarks, visible, 100).tolist() == [
        False, True, False
    ]  # fmt: skip
    assert centre_landmarks(["a", "b", "c"], landmarks, visible, 100).tolist() == [
        False, True, False
    ]  # fmt: skip
    hidden = visible.clone()
    hidden[:, 1] = False  # never shown: cannot be the centre
    assert not bool(centre_landmarks(["a", "b", "c"], landmarks, hidden, 100)[1])


def test_planted_positions_through_the_accumulator() -> None:
    """Pattern 0 sits on the head in every image; pattern 1 never moves. Head and tail swing,
    the body barely moves."""
    gen = torch.Generator().manual_seed(0)
    n, size = 30, 100
    body = torch.tensor([50.0, 50.0]) + 0.5 * torch.randn(n, 2, generator=gen)
    head = torch.tensor([75.0, 30.0]) + 8.0 * torch.randn(n, 2, generator=gen)
    tail = torch.tensor([20.0, 60.0]) + 8.0 * torch.randn(n, 2, generator=gen)
    landmarks = torch.stack([body, head, tail], dim=1)  # [n, J, 2]
    visible = torch.ones(n, 3, dtype=torch.bool)
    positions = torch.stack([head, torch.full((n, 2), 40.0)], dim=1)  # [n, P, 2]
    frozen = torch.full((n, 2, 2), 60.0)
    acc = TopKAccumulator(2, 3, top_k=n, views=2)
    acc.add([positions, frozen], torch.rand(n, 2, generator=gen), landmarks, visible, None)
    diagonal = size * math.sqrt(2.0)
    rows = [torch.stack(acc.landmark_spreads(diagonal=diagonal, signed=True, view=v))
            for v in (0, 1)]  # fmt: skip
    values = best_landmarks(rows[0], rows[1], torch.zeros(3), torch.arange(2),
                            torch.tensor([True, False, False]), 2)  # fmt: skip
    assert values.landmark.tolist() == [1, 0]  # the head tracker, and the still point on the body
    assert float(values.patterns[0]) == pytest.approx(0.0, abs=1e-6)  # as the perfect detector
    assert float(values.frozen_prior[0]) > 0.05  # frozen, it pays the head's swing
    assert float(values.patterns[1]) == pytest.approx(float(values.frozen_prior[1]), abs=1e-6)
    table = summarise(values)
    assert table["off_centre"]["beat_frozen"] == 1.0 and table["centre"]["beat_frozen"] == 0.0
