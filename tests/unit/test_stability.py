"""Location instability: known geometric cases computed by hand."""

from __future__ import annotations

import math

import torch

from queries.stability import filter_argmax_positions, layer_instability, pattern_instability


def test_pattern_that_tracks_the_landmark_is_perfectly_stable() -> None:
    landmarks = torch.rand(30, 1, 2) * 100
    positions = torch.cat([landmarks + 5.0, torch.rand(30, 1, 2) * 100], dim=1)  # [30, 2, 2]
    scores = torch.ones(30, 2)
    visible = torch.ones(30, 1, dtype=torch.bool)
    result = pattern_instability(positions, scores, landmarks, visible, diagonal=100.0, top_k=20)
    assert result[0].item() < 1e-6
    assert result[1].item() > 0.05


def test_instability_is_std_of_normalised_distance_over_top_images() -> None:
    # Two images: distances 0 and 10 px, diagonal 10 -> d = 0 and 1 -> std = 0.5.
    positions = torch.tensor([[[0.0, 0.0]], [[10.0, 0.0]]])
    landmarks = torch.zeros(2, 1, 2)
    result = pattern_instability(
        positions, torch.ones(2, 1), landmarks, torch.ones(2, 1, dtype=torch.bool), diagonal=10.0
    )
    assert math.isclose(result[0].item(), 0.5, rel_tol=1e-6)


def test_only_top_k_images_with_a_visible_landmark_count() -> None:
    positions = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]], [[50.0, 0.0]]])
    landmarks = torch.zeros(3, 1, 2)
    scores = torch.tensor([[3.0], [2.0], [1.0]])
    visible = torch.ones(3, 1, dtype=torch.bool)
    assert pattern_instability(positions, scores, landmarks, visible, diagonal=1.0, top_k=2)[0] == 0
    visible[1, 0] = False  # now the far-away third image enters the top 2
    assert pattern_instability(positions, scores, landmarks, visible, diagonal=1.0, top_k=2)[0] > 0


def test_layer_mean_uses_the_best_ranked_patterns() -> None:
    landmarks = torch.rand(10, 1, 2) * 10
    stable = landmarks.clone()
    unstable = torch.rand(10, 1, 2) * 10
    positions = torch.cat([stable, unstable], dim=1)
    scores = torch.cat([torch.full((10, 1), 5.0), torch.full((10, 1), 1.0)], dim=1)
    visible = torch.ones(10, 1, dtype=torch.bool)
    best = layer_instability(positions, scores, landmarks, visible, diagonal=10.0, n_top=1)
    assert best.ranked.tolist() == [0]
    assert best.mean < 1e-6
    both = layer_instability(positions, scores, landmarks, visible, diagonal=10.0, n_top=2)
    assert both.mean > best.mean


def test_filter_argmax_positions_maps_units_to_pixels() -> None:
    maps = torch.zeros(1, 2, 4, 5)
    maps[0, 0, 1, 3] = 2.0
    maps[0, 1, 3, 0] = 1.0
    positions, values = filter_argmax_positions(maps, stride=8.0, rf_offset=3.5)
    assert positions[0, 0].tolist() == [3 * 8 + 3.5, 1 * 8 + 3.5]
    assert positions[0, 1].tolist() == [3.5, 3 * 8 + 3.5]
    assert values[0].tolist() == [2.0, 1.0]
