"""Signed instability and the fixed-point controls on planted data (docs/method.md §7.3)."""

from __future__ import annotations

import math

import torch

from queries.stability import (
    TopKAccumulator,
    fixed_point_grid,
    fixed_point_instability,
    pattern_instability,
)

SIZE = 100
DIAG = SIZE * math.sqrt(2.0)


def _both_ways(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Head landmark at x = 50 ± 30 (facing right or left), y = 40 ± small jitter."""
    gen = torch.Generator().manual_seed(seed)
    facing_left = torch.rand(n, generator=gen) < 0.5
    x = torch.where(facing_left, 20.0, 80.0) + torch.randn(n, generator=gen) * 3.0
    y = 40.0 + torch.randn(n, generator=gen) * 3.0
    return torch.stack([x, y], dim=-1)[:, None, :], torch.ones(n, 1, dtype=torch.bool), facing_left


def _accumulate(positions: torch.Tensor, landmarks, visible, flipped, chunk: int = 7):
    n, p, _ = positions.shape
    acc = TopKAccumulator(p, landmarks.shape[1], top_k=20)
    scores = torch.arange(n, 0, -1, dtype=torch.float32)[:, None].expand(n, p)
    for s in range(0, n, chunk):  # streamed in uneven chunks
        acc.add(
            positions[s : s + chunk],
            scores[s : s + chunk],
            landmarks[s : s + chunk],
            visible[s : s + chunk],
            None if flipped is None else flipped[s : s + chunk],
        )
    return acc


def test_fixed_point_beats_random_unsigned_but_signed_does_not_reward_it() -> None:
    landmarks, visible, _ = _both_ways(200)
    gen = torch.Generator().manual_seed(1)
    random_detector = torch.rand(200, 1, 2, generator=gen) * SIZE
    centre = torch.full((200, 1, 2), 50.0)
    rand_acc = _accumulate(random_detector, landmarks, visible, None)
    fixed_acc = _accumulate(centre, landmarks, visible, None)
    # the paper's unsigned metric: a point at the centre is "more stable" than a random detector
    fixed_u = float(fixed_acc.per_pattern(diagonal=DIAG, signed=False)[0])
    rand_u = float(rand_acc.per_pattern(diagonal=DIAG, signed=False)[0])
    assert fixed_u < 0.5 * rand_u
    # the signed metric: the point's spread is the landmark's own ±30 px, not close to zero
    fixed_s = float(fixed_acc.per_pattern(diagonal=DIAG, signed=True)[0])
    assert fixed_s > 25.0 / DIAG
    assert fixed_s > 3.0 * fixed_u


def test_detector_moving_with_the_part_wins_signed() -> None:
    landmarks, visible, facing_left = _both_ways(200)
    gen = torch.Generator().manual_seed(2)
    tracker = landmarks + torch.randn(200, 1, 2, generator=gen) * 4.0
    centre = torch.full((200, 1, 2), 50.0)
    tracker_s = float(
        _accumulate(tracker, landmarks, visible, None).per_pattern(diagonal=DIAG, signed=True)[0]
    )
    fixed_s = float(
        _accumulate(centre, landmarks, visible, None).per_pattern(diagonal=DIAG, signed=True)[0]
    )
    assert tracker_s < 0.3 * fixed_s
    # knowing the facing turns the fixed point into a facing-aware prior: far better, still
    # not as good as a detector that follows the jittered head
    _, aware = fixed_point_instability(
        torch.tensor([[80.0, 40.0]]), landmarks, visible, facing_left, size=SIZE, diagonal=DIAG
    )
    assert float(aware[0, 0]) < 0.3 * fixed_s


def test_accumulator_matches_batch_unsigned_and_keeps_top_k() -> None:
    gen = torch.Generator().manual_seed(3)
    n, p, j = 90, 5, 3
    positions = torch.rand(n, p, 2, generator=gen) * SIZE
    scores = torch.rand(n, p, generator=gen)
    landmarks = torch.rand(n, j, 2, generator=gen) * SIZE
    visible = torch.rand(n, j, generator=gen) < 0.7
    acc = TopKAccumulator(p, j, top_k=20)
    for s in range(0, n, 16):
        acc.add(
            positions[s : s + 16], scores[s : s + 16], landmarks[s : s + 16], visible[s : s + 16]
        )
    batch = pattern_instability(positions, scores, landmarks, visible, diagonal=DIAG, top_k=20)
    assert torch.allclose(acc.per_pattern(diagonal=DIAG, signed=False), batch, atol=1e-6)
    assert acc.scores.shape[1] == 20  # bounded memory: only the top-k rows are held


def test_mirror_normalised_frame_undoes_the_flip() -> None:
    # a detector that reads mirrored images sits at the mirror of the head: in the normalised
    # frame its offset is constant, so the signed spread is zero when told which were flipped
    landmarks, visible, facing_left = _both_ways(60)
    positions = landmarks.clone()
    acc = _accumulate(
        positions + torch.tensor([5.0, 0.0]) * torch.where(facing_left, -1.0, 1.0)[:, None, None],
        landmarks,
        visible,
        facing_left,
    )
    assert float(acc.per_pattern(diagonal=DIAG, signed=True)[0]) < 1e-5


def test_best_fixed_point_is_no_worse_than_centre() -> None:
    landmarks, visible, _ = _both_ways(100)
    points = torch.cat([torch.tensor([[50.0, 50.0]]), fixed_point_grid(SIZE, 8)])
    unsigned, signed = fixed_point_instability(
        points, landmarks, visible, None, size=SIZE, diagonal=DIAG
    )
    assert float(unsigned.amin()) <= float(unsigned[0, 0])
    # the signed spread does not depend on where the point sits
    assert torch.allclose(signed, signed[0:1].expand_as(signed), atol=1e-6)
