"""Firing selection: exact union of per-image and per-pattern top lists, across chunks."""

from __future__ import annotations

import torch

from miner.firings import FiringSelector


def _reference(scores: torch.Tensor, per_image: int, per_pattern: int) -> set[tuple[int, int]]:
    kept = set()
    for i in range(scores.shape[0]):
        for p in scores[i].argsort(descending=True)[:per_image].tolist():
            kept.add((i, p))
    for p in range(scores.shape[1]):
        for i in scores[:, p].argsort(descending=True)[:per_pattern].tolist():
            kept.add((i, p))
    return kept


def test_selection_matches_reference_whatever_the_chunking() -> None:
    scores = torch.rand(23, 9)
    positions = torch.rand(23, 9, 2) * 96
    expected = _reference(scores, per_image=2, per_pattern=3)
    for chunk in (1, 5, 23):
        selector = FiringSelector(9, per_image=2, per_pattern=3)
        for start in range(0, 23, chunk):
            selector.add(positions[start : start + chunk], scores[start : start + chunk])
        firings = selector.result()
        got = set(zip(firings.image.tolist(), firings.pattern.tolist(), strict=True))
        assert got == expected
        assert torch.equal(firings.x, positions[firings.image, firings.pattern, 0])
        assert torch.equal(firings.score, scores[firings.image, firings.pattern])


def test_rank_zero_is_the_images_best_pattern() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    selector = FiringSelector(3, per_image=1, per_pattern=1)
    selector.add(torch.zeros(2, 3, 2), scores)
    firings = selector.result()
    best = {
        (i, p)
        for i, p, r in zip(
            firings.image.tolist(), firings.pattern.tolist(), firings.rank.tolist(), strict=True
        )
        if r == 0
    }
    assert best == {(0, 1), (1, 0)}
