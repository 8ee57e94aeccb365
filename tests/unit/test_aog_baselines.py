"""Baselines on planted feature maps: NN transfer finds the matching feature, raw filters vote."""

from __future__ import annotations

import numpy as np
import torch

from miner.graph import TensorFeatures
from miner.models.spec import LayerGeometry
from queries.aog import baselines, descriptors
from queries.aog.select import SelectionSettings

SIZE = 96
GEOMETRY = LayerGeometry("conv", 0, 6, 12, 12, 8.0, 8.0, 3.5)


def _features(maps: torch.Tensor) -> TensorFeatures:
    return TensorFeatures([maps], [GEOMETRY], [maps.flip(-1)])


def test_nn_transfer_finds_the_shot_feature_in_a_new_image() -> None:
    torch.manual_seed(0)
    signature = torch.tensor([0.0, 3.0, 0.0, 2.0, 5.0, 0.0])
    shot = torch.rand(1, 6, 12, 12) * 0.2
    shot[0, :, 5, 3] = signature  # unit (x=3, y=5)
    test = torch.rand(2, 6, 12, 12) * 0.2
    test[0, :, 2, 8] = signature
    test[1, :, 9, 1] = signature
    part = GEOMETRY.to_pixels(torch.tensor([[3.0, 5.0]])).numpy().astype(np.float64)
    at_part = descriptors.shot_descriptors(_features(shot), part, size=SIZE)
    found = baselines.nn_transfer(at_part, _features(test), 0, 2, size=SIZE)
    expected = GEOMETRY.to_pixels(torch.tensor([[8.0, 2.0], [1.0, 9.0]]))
    assert torch.allclose(found, expected)


def test_static_prior_is_the_mean_shot_position() -> None:
    prior = baselines.static_prior(np.array([[10.0, 20.0], [30.0, 40.0]]), 3)
    assert prior.shape == (3, 2) and prior[2].tolist() == [20.0, 30.0]


def test_raw_filters_vote_like_the_aog() -> None:
    # filters 0-2 peak at a fixed offset from the part; filters 3-5 at random places
    rng = np.random.default_rng(1)
    offsets = np.array([[2, 0], [-2, 1], [0, -2]])

    def image(part_unit: np.ndarray) -> torch.Tensor:
        maps = torch.zeros(1, 6, 12, 12)
        for f in range(6):
            ux, uy = part_unit + offsets[f] if f < 3 else rng.integers(0, 12, size=2)
            maps[0, f, int(uy), int(ux)] = 1.0
        return maps

    shot_part_unit = np.array([5, 6])
    shot = _features(image(shot_part_unit))
    reference = [torch.ones(6)]
    run = baselines.filter_run(shot, 0, 1, mirrored=False, reference=reference)
    part_px = GEOMETRY.to_pixels(torch.tensor([[5.0, 6.0]])).numpy().astype(np.float64)
    aog = baselines.build_filter_aog(
        run,
        part_px,
        np.array([0]),
        [GEOMETRY],
        model_id="m",
        part="head",
        size=SIZE,
        settings=SelectionSettings(radius=1.0),
    )
    assert set(aog.uses["idx"]) >= {0, 1, 2}
    test_unit = np.array([7, 4])
    votes = baselines.filter_votes(aog, _features(image(test_unit)), 0, 1, reference)
    expected = GEOMETRY.to_pixels(torch.tensor([7.0, 4.0]))
    assert torch.dist(votes.xy[0], expected) <= 1.5
