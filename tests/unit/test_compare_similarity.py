"""Pattern similarity across graphs and one-to-one matching (queries.compare.similarity)."""

from __future__ import annotations

import math

import pytest
import torch

from explgraph.core.errors import InputError
from queries.compare.similarity import (
    Candidates,
    firing_weights,
    match_candidates,
    similarity_candidates,
)


def _reference(
    wa: torch.Tensor, za: torch.Tensor, wb: torch.Tensor, zb: torch.Tensor, t: float
) -> torch.Tensor:
    """The definition, written out densely: sum_n wA wB exp(-|zA - zB|^2 / 2t^2)."""
    d2 = ((za[:, :, None, :] - zb[:, None, :, :]) ** 2).sum(-1)
    return torch.einsum("np,npq,nq->pq", wa, torch.exp(-d2 / (2 * t * t)), wb)


def test_firing_weights_keep_top_k_scaled_to_unit_length() -> None:
    scores = torch.tensor([[5.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 0.0]])

    weights = firing_weights(scores, top_k=2)

    assert weights[:, 0].nonzero().squeeze(1).tolist() == [0, 3]
    assert torch.allclose(weights[:, 0], torch.tensor([5.0, 0, 0, 4.0]) / math.hypot(5, 4))
    assert torch.equal(weights[:, 1], torch.zeros(4))  # never fires: no weight at all


def test_firing_weights_cap_k_at_the_number_of_images() -> None:
    weights = firing_weights(torch.rand(3, 5) + 0.1, top_k=20)
    assert bool((weights > 0).all())
    assert torch.allclose(weights.norm(dim=0), torch.ones(5))


@pytest.mark.parametrize(
    ("n_images", "top_k"),
    [(6, 3), (200, 2)],
    ids=["few-images-dense-kernel", "many-images-sparse-join"],
)
def test_candidates_agree_with_the_dense_definition(n_images: int, top_k: int) -> None:
    wa = firing_weights(torch.rand(n_images, 37), top_k)
    wb = firing_weights(torch.rand(n_images, 23), top_k)
    za, zb = torch.rand(n_images, 37, 2), torch.rand(n_images, 23, 2)

    found = similarity_candidates(
        wa, za, wb, zb, tolerance=0.3, candidates=4, block=10, work_elements=50
    )

    ref = _reference(wa, za, wb, zb, 0.3)
    for value, index, sims in (
        (found.a_value, found.a_index, ref),
        (found.b_value, found.b_index, ref.T),
    ):
        top = sims.topk(4, dim=1)
        positive = top.values > 0
        assert torch.allclose(value[positive], top.values[positive], atol=1e-6)
        assert bool((value[~positive] == -1).all() and (index[~positive] == -1).all())
        fires = positive[:, 0]  # random data: positive similarities are never tied
        assert torch.equal(index[fires, 0], sims[fires].argmax(dim=1))
    assert bool((ref == 0).any()) and bool((ref > 0).any())  # both kinds of rows were checked


def test_shifted_copy_scores_the_gaussian_of_the_shift() -> None:
    wa = firing_weights(torch.rand(12, 5), 4)
    za = torch.rand(12, 5, 2)
    shift = 0.05

    found = similarity_candidates(
        wa, za, wa, za + torch.tensor([shift, 0.0]), tolerance=0.1, candidates=1
    )

    # same images, same weights, every position moved by `shift`: sim = exp(-shift^2 / 2t^2)
    expected = math.exp(-(shift**2) / (2 * 0.1**2))
    assert torch.allclose(found.a_value[:, 0], torch.full((5,), expected), atol=1e-5)


def test_patterns_that_never_fire_together_are_no_candidates() -> None:
    scores_a = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    scores_b = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    z = torch.zeros(4, 1, 2)

    found = similarity_candidates(
        firing_weights(scores_a, 2), z, firing_weights(scores_b, 2), z, tolerance=0.1
    )

    assert bool((found.a_index == -1).all() and (found.b_index == -1).all())
    a, _, _ = match_candidates(found, threshold=0.5)
    assert a.numel() == 0


def test_a_graph_matches_itself_even_with_exact_duplicates() -> None:
    weights = firing_weights(torch.rand(30, 40), 8)
    positions = torch.rand(30, 40, 2)
    # patterns 40-42 duplicate 3, 7 and 7 exactly: ties must still resolve to the identity
    weights = torch.cat([weights, weights[:, [3, 7, 7]]], dim=1)
    positions = torch.cat([positions, positions[:, [3, 7, 7]]], dim=1)

    found = similarity_candidates(weights, positions, weights, positions, tolerance=0.1, block=16)
    a, b, similarity = match_candidates(found, threshold=0.9)

    assert torch.equal(a, torch.arange(43))
    assert torch.equal(b, torch.arange(43))
    assert torch.allclose(similarity, torch.ones(43), atol=1e-6)


def _candidates(
    a_rows: list[list[tuple[int, float]]], b_rows: list[list[tuple[int, float]]]
) -> Candidates:
    def pack(rows: list[list[tuple[int, float]]]) -> tuple[torch.Tensor, torch.Tensor]:
        m = max(len(r) for r in rows)
        index = torch.full((len(rows), m), -1, dtype=torch.long)
        value = torch.full((len(rows), m), -1.0)
        for i, row in enumerate(rows):
            for j, (k, v) in enumerate(row):
                index[i, j], value[i, j] = k, v
        return index, value

    ai, av = pack(a_rows)
    bi, bv = pack(b_rows)
    return Candidates(ai, av, bi, bv)


def test_matching_is_one_to_one_and_takes_the_next_best_in_later_rounds() -> None:
    # A0 and A1 both want B0; B0 prefers A0, so A1 settles for B1 in the second round.
    found = _candidates(
        a_rows=[[(0, 0.9), (1, 0.2)], [(0, 0.8), (1, 0.7)], [(1, 0.3)]],
        b_rows=[[(0, 0.9), (1, 0.8)], [(1, 0.7), (2, 0.3)]],
    )

    a, b, similarity = match_candidates(found, threshold=0.5)

    assert a.tolist() == [0, 1]
    assert b.tolist() == [0, 1]
    assert similarity.tolist() == pytest.approx([0.9, 0.7])
    a_low, b_low, _ = match_candidates(found, threshold=0.25)
    assert a_low.tolist() == [0, 1] and b_low.tolist() == [0, 1]  # A2's only choice is taken


def test_bad_inputs_raise_input_errors() -> None:
    w = firing_weights(torch.rand(4, 3), 2)
    z = torch.rand(4, 3, 2)
    with pytest.raises(InputError, match="same images"):
        similarity_candidates(w, z, w[:3], z[:3], tolerance=0.1)
    with pytest.raises(InputError, match="tolerance"):
        similarity_candidates(w, z, w, z, tolerance=0.0)
    with pytest.raises(InputError, match="top_k"):
        firing_weights(torch.rand(4, 3), 0)
