"""Gaussian voting: maps against a direct sum, the OR over templates, mirrored readings."""

from __future__ import annotations

import math

import torch

from queries.aog.vote import best_vote, cast_votes, vote_maps, voter_contributions

SIZE = 40


def test_vote_maps_equal_the_direct_sum_of_gaussians() -> None:
    centres = torch.tensor([[[10.0, 12.0], [30.5, 5.0], [20.0, 20.0]]])
    amplitude = torch.tensor([[1.0, 0.5, 2.0]])
    template = torch.tensor([0, 1, 0])
    maps = vote_maps(centres, amplitude, template, 2, size=SIZE, sigma=3.0)
    y, x = 7, 28
    direct = [0.0, 0.0]
    for k in range(3):
        d2 = (x + 0.5 - centres[0, k, 0]) ** 2 + (y + 0.5 - centres[0, k, 1]) ** 2  # pixel centres
        direct[int(template[k])] += float(amplitude[0, k] * torch.exp(-d2 / 18.0))
    assert math.isclose(float(maps[0, 0, y, x]), direct[0], rel_tol=1e-5)
    assert math.isclose(float(maps[0, 1, y, x]), direct[1], rel_tol=1e-5)


def test_best_vote_takes_the_strongest_template() -> None:
    centres = torch.tensor([[[8.5, 9.5], [8.5, 9.5], [30.5, 25.5]]])
    amplitude = torch.tensor([[1.0, 1.0, 1.5]])
    maps = vote_maps(centres, amplitude, torch.tensor([0, 0, 1]), 2, size=SIZE, sigma=2.0)
    best = best_vote(maps)
    assert int(best.template[0]) == 0  # two agreeing voters beat one stronger one
    assert best.xy[0].tolist() == [8.5, 9.5]
    share = voter_contributions(centres, amplitude, best.xy, sigma=2.0)
    assert share[0, 0] > 0.99 and share[0, 2] < 1e-6


def test_cast_votes_prefers_the_orientation_that_fits_and_maps_it_back() -> None:
    offsets = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 6.0]])
    weights = torch.full((3,), 1.0 / 3)
    template = torch.zeros(3, dtype=torch.long)
    part_mirrored_frame = torch.tensor([12.5, 20.5])
    # in the mirrored reading the patterns sit where the template expects them ...
    good = (part_mirrored_frame[None] - offsets)[None]
    # ... in the plain reading they are scattered and weak
    bad = torch.tensor([[[2.0, 2.0], [37.0, 3.0], [20.0, 38.0]]])
    votes = cast_votes(
        {False: bad, True: good},
        {False: torch.full((1, 3), 0.6), True: torch.full((1, 3), 2.0)},
        offsets,
        weights,
        template,
        1,
        size=SIZE,
        sigma=2.0,
        min_confidence=0.5,
        confidence_cap=4.0,
        keep_maps=True,
    )
    assert bool(votes.flipped[0])
    assert votes.xy[0].tolist() == [SIZE - 12.5, 20.5]  # pixel centres, original frame
    assert votes.maps is not None
    peak = int(votes.maps[0].argmax())
    assert (peak % SIZE, peak // SIZE) == (SIZE - 1 - 12, 20)  # the map is in the original frame
    assert votes.positions[0, 2].tolist() == [SIZE - 12.5, 14.5]


def test_patterns_below_the_confidence_threshold_do_not_vote() -> None:
    offsets = torch.zeros(2, 2)
    votes = cast_votes(
        {False: torch.tensor([[[5.5, 5.5], [30.5, 30.5]]])},
        {False: torch.tensor([[0.2, 1.0]])},
        offsets,
        torch.tensor([10.0, 1.0]),
        torch.zeros(2, dtype=torch.long),
        1,
        size=SIZE,
        sigma=2.0,
        min_confidence=0.5,
        confidence_cap=4.0,
    )
    assert votes.xy[0].tolist() == [30.5, 30.5]
    assert not bool(votes.flipped[0])


def test_a_fixed_orientation_overrides_the_vote_strength() -> None:
    offsets = torch.zeros(1, 2)
    common = {
        "offsets": offsets,
        "weights": torch.ones(1),
        "template": torch.zeros(1, dtype=torch.long),
        "n_templates": 1,
        "size": SIZE,
        "sigma": 2.0,
        "min_confidence": 0.5,
        "confidence_cap": 4.0,
    }
    positions = {False: torch.tensor([[[5.5, 5.5]]]), True: torch.tensor([[[9.5, 30.5]]])}
    confidence = {False: torch.tensor([[1.0]]), True: torch.tensor([[3.0]])}
    by_vote = cast_votes(positions, confidence, **common)  # type: ignore[arg-type]
    assert bool(by_vote.flipped[0]) and by_vote.xy[0].tolist() == [SIZE - 9.5, 30.5]
    forced = cast_votes(
        positions,
        confidence,
        use_mirror=torch.tensor([False]),
        **common,  # type: ignore[arg-type]
    )
    assert not bool(forced.flipped[0]) and forced.xy[0].tolist() == [5.5, 5.5]


def test_all_template_maps_are_the_sum_of_every_template_not_the_winner() -> None:
    # template 0: two agreeing voters (the winner); template 1: one weaker voter elsewhere
    positions = {False: torch.tensor([[[8.5, 9.5], [8.5, 9.5], [30.5, 25.5]]])}
    confidence = {False: torch.ones(1, 3)}
    common = {
        "offsets": torch.zeros(3, 2),
        "weights": torch.tensor([1.0, 1.0, 1.5]),
        "template": torch.tensor([0, 0, 1]),
        "n_templates": 2,
        "size": SIZE,
        "sigma": 2.0,
        "min_confidence": 0.5,
        "confidence_cap": 4.0,
        "keep_maps": True,
    }
    winner = cast_votes(positions, confidence, **common)  # type: ignore[arg-type]
    summed = cast_votes(positions, confidence, all_templates=True, **common)  # type: ignore[arg-type]
    assert winner.maps is not None and summed.maps is not None
    direct = vote_maps(
        positions[False],
        torch.tensor([[1.0, 1.0, 1.5]]),
        common["template"],
        2,
        size=SIZE,
        sigma=2.0,
    ).sum(dim=1)
    assert torch.allclose(summed.maps, direct)
    # the second template's place is (almost) absent from the winner's map, present in the sum
    assert float(winner.maps[0, 25, 30]) < 1e-6
    assert math.isclose(float(summed.maps[0, 25, 30]), 1.5, rel_tol=1e-4)
    # the answer itself (location, template, reading) does not depend on the kept maps
    assert winner.xy.tolist() == summed.xy.tolist() and winner.template.tolist() == [0]
