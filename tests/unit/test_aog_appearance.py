"""The AOG's appearance check: reading and location from vote map x part similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explgraph.core.errors import InputError
from miner.graph.types import TensorFeatures
from miner.models.spec import LayerGeometry
from queries.aog.appearance import joint_peak, similarity_maps
from queries.aog.descriptors import canonical_descriptors
from queries.aog.select import SelectionSettings

S = 8


def _maps(peaks: list[tuple[int, int, float]]) -> torch.Tensor:
    out = torch.zeros(1, S, S)
    for x, y, value in peaks:
        out[0, y, x] = value
    return out


def test_equal_votes_the_reading_whose_peak_looks_like_the_part_wins() -> None:
    votes = {False: _maps([(2, 3, 1.0)]), True: _maps([(5, 3, 1.0)])}
    sims = {False: torch.full((1, S, S), 0.2), True: torch.full((1, S, S), 0.9)}
    xy, mirrored = joint_peak(votes, sims, power=4.0)
    assert bool(mirrored[0])
    assert xy[0].tolist() == [5.5, 3.5]


def test_appearance_picks_among_the_vote_peaks_of_a_reading() -> None:
    votes = {False: _maps([(1, 1, 1.0), (6, 6, 0.9)]), True: torch.zeros(1, S, S)}
    sim = torch.full((1, S, S), 0.3)
    sim[0, 6, 6] = 0.9
    xy, mirrored = joint_peak(votes, {False: sim, True: sim.clone()}, power=4.0)
    assert not bool(mirrored[0])
    assert xy[0].tolist() == [6.5, 6.5]


def test_votes_are_compared_across_readings_not_normalised_per_reading() -> None:
    # a reading with a tenth of the vote must not win on equal appearance
    votes = {False: _maps([(2, 2, 1.0)]), True: _maps([(5, 5, 0.1)])}
    sims = {False: torch.full((1, S, S), 0.5), True: torch.full((1, S, S), 0.5)}
    xy, mirrored = joint_peak(votes, sims, power=4.0)
    assert not bool(mirrored[0])
    assert xy[0].tolist() == [2.5, 2.5]


def test_power_zero_is_the_vote_map_alone() -> None:
    votes = {False: _maps([(1, 1, 1.0), (6, 6, 0.9)]), True: torch.zeros(1, S, S)}
    sim = torch.full((1, S, S), 0.1)
    sim[0, 6, 6] = 1.0
    xy, _ = joint_peak(votes, {False: sim, True: sim.clone()}, power=0.0)
    assert xy[0].tolist() == [1.5, 1.5]


def test_descriptors_are_taken_in_the_frame_the_graph_read_each_shot_in() -> None:
    geometry = LayerGeometry("l0", 0, 3, 4, 4, 1.0, 1.0, 0.5)  # one unit per crop pixel
    plain = torch.rand(2, 3, 4, 4) + 0.1
    mirrored = plain.flip(-1) * torch.tensor([1.0, 2.0, 0.5])[None, :, None, None]
    source = TensorFeatures([plain], [geometry], flipped_maps=[mirrored])
    parts = np.array([[0.5, 1.5], [0.5, 2.5]])  # crop px of the original orientation
    out = canonical_descriptors(source, parts, [False, True], size=4)
    want_plain = torch.nn.functional.normalize(plain[0, :, 1, 0], dim=0)
    want_mirror = torch.nn.functional.normalize(mirrored[1, :, 2, 3], dim=0)  # x -> 4 - x
    assert torch.allclose(out[0], want_plain, atol=1e-6)
    assert torch.allclose(out[1], want_mirror, atol=1e-6)
    assert not torch.allclose(out[1], torch.nn.functional.normalize(plain[1, :, 2, 0], dim=0))


def test_pooled_similarity_max_takes_the_best_shot_mean_every_shot() -> None:
    geometry = LayerGeometry("l0", 0, 2, 2, 2, 1.0, 1.0, 0.5)
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0, 0, 0] = 1.0  # unit (0, 0) looks like shot a only
    maps[0, :, 1, 1] = 1.0  # unit (1, 1) halfway between shots a and b
    source = TensorFeatures([maps], [geometry], flipped_maps=[maps.flip(-1)])
    shots = torch.eye(2)  # shot a = channel 0, shot b = channel 1
    best = similarity_maps(shots, source, 0, 1, mirrored=False, size=2, pool="max")
    mean = similarity_maps(shots, source, 0, 1, mirrored=False, size=2, pool="mean")
    assert best[0, 0, 0] > best[0, 1, 1]  # one perfect match beats two partial ones
    assert mean[0, 1, 1] > mean[0, 0, 0]  # resembling both shots beats resembling one
    with pytest.raises(InputError):
        similarity_maps(shots, source, 0, 1, mirrored=False, size=2, pool="median")
    with pytest.raises(InputError):
        SelectionSettings(appearance_pool="median")
