"""The perfect part detector reference of the signed instability metric (docs/faithfulness.md)."""

from __future__ import annotations

import math

import torch

from queries.part_detector_reference import PerfectDetectorAccumulator
from queries.stability import TopKAccumulator


def _scene(n: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two landmarks that move independently, three patterns: on landmark 0, fixed, random."""
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(n, 2, 2, generator=gen) * 100.0
    positions = torch.stack(
        [points[:, 0], torch.full((n, 2), 50.0), torch.rand(n, 2, generator=gen) * 100.0], dim=1
    )
    scores = torch.rand(n, 3, generator=gen)
    flipped = torch.rand(n, generator=gen) > 0.5
    return points, positions, scores, flipped


def test_a_pattern_on_a_landmark_scores_the_perfect_detector() -> None:
    points, positions, scores, flipped = _scene()
    shown = torch.ones(points.shape[:2], dtype=torch.bool)
    acc = PerfectDetectorAccumulator(3, 2, top_k=10)
    frozen = torch.full_like(positions, 50.0)
    acc.add(positions, frozen, scores, points, shown, shown, flipped)
    diagonal = 100.0 * math.sqrt(2.0)
    per = acc.on_landmark[0].per_pattern(diagonal=diagonal, signed=True)
    # pattern 0 sits on landmark 0 in every image: it is the detector on landmark 0
    mine = acc.patterns.per_pattern(diagonal=diagonal, signed=True)
    assert math.isclose(float(per[0]), float(mine[0]), rel_tol=1e-6)
    # with two landmarks, sitting on either costs the spread of their difference once
    other = acc.on_landmark[1].per_pattern(diagonal=diagonal, signed=True)
    assert torch.allclose(per, other, rtol=1e-5)
    means = acc.layer_means(3, diagonal=diagonal)
    assert means["perfect_part_detector"] > 0
    # a point that never moves scores the landmarks' own spread: the frozen control
    fixed = acc.frozen.per_pattern(diagonal=diagonal, signed=True)
    assert math.isclose(float(fixed[1]), float(mine[1]), rel_tol=1e-6)


def test_the_detector_sits_on_an_occluded_landmark_but_not_an_unannotated_one() -> None:
    points, positions, scores, flipped = _scene()
    visible = torch.ones(points.shape[:2], dtype=torch.bool)
    visible[:10, 0] = False  # occluded: landmark 0 is not scored there, its detector still sits
    known = torch.ones_like(visible)
    acc = PerfectDetectorAccumulator(3, 2, top_k=30)
    acc.add(positions, positions, scores, points, visible, known, flipped)
    # the detector on landmark 0, measured against landmark 1, uses all 30 images
    plain = TopKAccumulator(3, 2, top_k=30)
    on0 = points[:, 0, None, :].expand(30, 3, 2)
    plain.add(on0, scores, points, visible, flipped)
    diagonal = 1.0
    assert torch.allclose(
        acc.on_landmark[0].per_pattern(diagonal=diagonal, signed=True),
        plain.per_pattern(diagonal=diagonal, signed=True),
    )
    # not annotated at all: those images drop out of the detector on that landmark
    known[:10, 0] = False
    dropped = PerfectDetectorAccumulator(3, 2, top_k=30)
    dropped.add(positions, positions, scores, points, visible, known, flipped)
    assert int(dropped.on_landmark[0].shown[1]) == 20
    assert int(dropped.on_landmark[1].shown[1]) == 30
