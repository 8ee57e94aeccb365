"""Raw-filter part purity and the fixed-point control on planted maps."""

from __future__ import annotations

import math

import torch

from queries.filter_parts import filter_part_report, fixed_point_positions, part_purity


def _planted(n: int = 30, size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two parts that move between images; filter 0 fires on part 0, filter 1 at a fixed unit,
    filter 2 never fires."""
    generator = torch.Generator().manual_seed(0)
    units = torch.randint(0, size, (n, 2, 2), generator=generator)  # [N, part, (x, y)]
    maps = torch.zeros(n, 3, size, size)
    images = torch.arange(n)
    maps[images, 0, units[:, 0, 1], units[:, 0, 0]] = 2.0 + torch.rand(n, generator=generator)
    maps[:, 1, 3, 3] = 1.0 + torch.rand(n, generator=generator)
    landmarks = units.float() * 4 + 2  # stride 4, offset 2: the unit centres in pixels
    return maps, landmarks, torch.ones(n, 2, dtype=torch.bool)


def test_part_filter_is_pure_and_beats_the_fixed_point() -> None:
    maps, landmarks, visible = _planted()
    report = filter_part_report(
        maps,
        landmarks,
        visible,
        ["a", "b"],
        stride=4,
        rf_offset=2,
        diagonal=math.hypot(32, 32),
        top_k=10,
        n_top=1,
    )
    assert report.dominant_part[0] == "a" and float(report.purity[0]) == 1.0
    assert report.dominant_part[2] == "dead" and float(report.purity[2]) == 0.0
    assert report.dead == 1
    # Against part a alone, filter 0 (ranked first: it fires strongest) sits exactly on it: zero
    # instability, while the fixed point does not follow the part.
    on_a = filter_part_report(
        maps,
        landmarks[:, :1],
        visible[:, :1],
        ["a"],
        stride=4,
        rf_offset=2,
        diagonal=math.hypot(32, 32),
        top_k=10,
        n_top=1,
    )
    assert on_a.instability == 0.0 < on_a.fixed_point_instability


def test_fixed_point_is_the_mean_of_the_top_images() -> None:
    positions = torch.tensor([[[0.0, 0.0]], [[2.0, 4.0]], [[10.0, 10.0]]])
    scores = torch.tensor([[3.0], [2.0], [1.0]])
    fixed = fixed_point_positions(positions, scores, top_k=2)
    assert fixed.shape == positions.shape
    assert torch.allclose(fixed[:, 0], torch.tensor([1.0, 2.0]).expand(3, 2))


def test_far_from_every_part_counts_as_none() -> None:
    positions = torch.tensor([[[100.0, 100.0]], [[0.0, 0.0]]])
    scores = torch.tensor([[2.0], [1.0]])
    landmarks = torch.zeros(2, 1, 2)
    purity, dominant, dead = part_purity(
        positions, scores, landmarks, torch.ones(2, 1, dtype=torch.bool), diagonal=10.0, top_k=2
    )
    assert float(purity[0]) == 0.5 and int(dominant[0]) == 0 and not bool(dead[0])
