"""Streamed top-k (compare, diagnose) and the image-join kernel give the same floats as the
all-in-memory path they replace."""

from __future__ import annotations

import pytest
import torch

from explgraph.core.errors import InputError
from queries.compare import similarity as kernels
from queries.compare.similarity import (
    TopFirings,
    firing_weights,
    similarity_candidates,
    top_similarity_candidates,
)
from queries.diagnose import OffObjectShare, off_object_share
from queries.stability import pattern_instability
from queries.streaming import RunningTopK, StreamedInstability


def _chunks(n: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def test_running_top_k_over_chunks_equals_one_top_k() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.rand(53, 17, generator=generator)
    payload = torch.rand(53, 17, 2, generator=generator)
    running = RunningTopK(6)
    for start, stop in _chunks(53, 8):
        running.add(scores[start:stop], payload[start:stop])

    top = scores.topk(6, dim=0)
    assert running.scores is not None
    assert torch.equal(running.scores, top.values)
    assert torch.equal(running.payloads[0], payload[top.indices, torch.arange(17)])


def test_running_top_k_needs_k_of_at_least_one() -> None:
    with pytest.raises(InputError):
        RunningTopK(0)


@pytest.mark.parametrize("top_k", [3, 50], ids=["k-below-shown", "k-above-shown"])
def test_streamed_instability_equals_pattern_instability(top_k: int) -> None:
    generator = torch.Generator().manual_seed(2)
    n, p, j = 41, 13, 4
    positions = torch.rand(n, p, 2, generator=generator) * 96
    scores = torch.randn(n, p, generator=generator)
    landmarks = torch.rand(n, j, 2, generator=generator) * 96
    visible = torch.rand(n, j, generator=generator) > 0.4
    visible[:, 3] = False
    visible[0, 3] = True  # one image shows it: below min_images, left out on both paths
    streamed = StreamedInstability(j, top_k)
    for start, stop in _chunks(n, 7):
        streamed.add(
            positions[start:stop], scores[start:stop], landmarks[start:stop], visible[start:stop]
        )

    expected = pattern_instability(
        positions, scores, landmarks, visible, diagonal=135.0, top_k=top_k
    )
    assert torch.equal(streamed.per_pattern(p, diagonal=135.0), expected)


def test_image_join_kernel_equals_the_pairwise_kernel_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(3)
    n, p = 60, 90
    wa = firing_weights(torch.rand(n, p, generator=generator), 9)
    wb = firing_weights(torch.rand(n, p, generator=generator), 9)
    za = torch.rand(n, p, 2, generator=generator)
    zb = za + 0.05 * torch.randn(n, p, 2, generator=generator)
    cpu = torch.device("cpu")
    a, b = kernels._firings(wa, za, cpu), kernels._firings(wb, zb, cpu)

    for work in (1, 500, 1 << 20):  # one image per run, a few, all at once
        joined = kernels._image_join_similarity(a, b, p, p, 50.0, work)
        assert torch.equal(joined, kernels._pairwise_similarity(a, b, p, p, 50.0, work))


def test_firing_weights_match_the_former_full_column_norm() -> None:
    scores = torch.rand(40, 30, generator=torch.Generator().manual_seed(4))
    weights = firing_weights(scores, 5)

    top = scores.topk(5, dim=0)
    former = torch.zeros_like(scores).scatter_(0, top.indices, top.values)
    former = former / former.norm(dim=0, keepdim=True)
    assert torch.equal(weights, former)


@pytest.mark.parametrize(
    ("n_images", "top_k"), [(8, 3), (120, 6)], ids=["dense-kernel", "image-join"]
)
def test_streamed_top_firings_give_the_same_candidates(n_images: int, top_k: int) -> None:
    generator = torch.Generator().manual_seed(5)
    scores_a = torch.randn(n_images, 37, generator=generator)
    scores_b = torch.randn(n_images, 23, generator=generator)
    za = torch.rand(n_images, 37, 2, generator=generator)
    zb = torch.rand(n_images, 23, 2, generator=generator)

    def streamed(scores: torch.Tensor, positions: torch.Tensor) -> TopFirings:
        running = RunningTopK(top_k)
        for start, stop in _chunks(n_images, 5):
            image = torch.arange(start, stop)[:, None].expand(stop - start, scores.shape[1])
            running.add(scores[start:stop].clamp_min(0.0), image, positions[start:stop])
        assert running.scores is not None
        return TopFirings.from_top(n_images, running.scores, *running.payloads)

    settings = {"tolerance": 0.3, "candidates": 4, "block": 10, "work_elements": 50}
    dense = similarity_candidates(
        firing_weights(scores_a, top_k), za, firing_weights(scores_b, top_k), zb, **settings
    )
    top = top_similarity_candidates(streamed(scores_a, za), streamed(scores_b, zb), **settings)

    for field in ("a_index", "a_value", "b_index", "b_value"):
        assert torch.equal(getattr(top, field), getattr(dense, field)), field


def test_off_object_share_over_chunks_equals_the_one_shot_share() -> None:
    generator = torch.Generator().manual_seed(6)
    positions = torch.rand(45, 11, 2, generator=generator) * 140 - 20
    scores = torch.randn(45, 11, generator=generator)
    scores[:, 4] = -1.0  # never fires: share 0 on both paths
    streamed = OffObjectShare(11, 96)
    for start, stop in _chunks(45, 8):
        streamed.add(positions[start:stop], scores[start:stop])

    expected = off_object_share(positions, scores, 96)
    assert streamed.share()[4] == 0.0
    assert abs(streamed.share() - expected).max() < 1e-12  # float64 sums, chunk by chunk
