"""Frames, per-part stability, graph statistics and the match-matrix PNG of ``compare``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miner.data.images import from_crop_coords
from miner.data.records import ImageRecord, Keypoint
from miner.graph import ExplanatoryGraph, GraphSettings, LayerPatterns
from miner.models.spec import LayerGeometry
from queries.compare import plot
from queries.compare.frames import (
    crop_to_image,
    image_to_box_units,
    landmarks_in_box_units,
    record_boxes,
)
from queries.compare.parts import part_instability, part_rows
from queries.compare.plot import draw_match_matrix
from queries.compare.statistics import graph_statistics


def test_crop_to_image_is_from_crop_coords_for_every_image() -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 70.0], [0.0, 0.0, 50.0, 200.0]])
    crop = torch.rand(2, 5, 2) * 96

    image = crop_to_image(crop, boxes, 96)

    for i in range(2):
        expected = from_crop_coords(crop[i].numpy(), tuple(boxes[i]), 96)
        assert np.allclose(image[i].numpy(), expected)


def test_box_units_measure_from_the_corner_in_diagonals() -> None:
    boxes = np.array([[10.0, 20.0, 40.0, 60.0]])  # 30 x 40: diagonal 50
    points = torch.tensor([[[10.0, 20.0], [40.0, 60.0], [25.0, 20.0]]])

    units = image_to_box_units(points, boxes)

    assert torch.allclose(units, torch.tensor([[[0.0, 0.0], [0.6, 0.8], [0.3, 0.0]]]))


def test_records_without_a_box_use_the_whole_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 48)).save(path)
    records = [
        ImageRecord(path, box=(1.0, 2.0, 30.0, 40.0), parts={"head": Keypoint(5.0, 6.0)}),
        ImageRecord(path, parts={"head": Keypoint(32.0, 24.0, visible=False)}),
    ]

    boxes = record_boxes(records)
    points, shown = landmarks_in_box_units(records, ["head", "tail"], boxes)

    assert boxes.tolist() == [[1.0, 2.0, 30.0, 40.0], [0.0, 0.0, 64.0, 48.0]]
    assert shown.tolist() == [[True, False], [False, False]]
    diagonal = math.hypot(29.0, 38.0)
    assert torch.allclose(points[0, 0], torch.tensor([4.0 / diagonal, 4.0 / diagonal]))


def test_a_pattern_that_follows_the_part_is_stable_and_a_random_one_is_not() -> None:
    torch.manual_seed(1)
    n = 30
    landmarks = torch.rand(n, 1, 2)
    visible = torch.ones(n, 1, dtype=torch.bool)
    follows = landmarks[:, 0] + torch.tensor([0.1, 0.0])  # a fixed offset from the part
    wanders = torch.rand(n, 2)
    positions = torch.stack([follows, wanders], dim=1)  # [N, 2 patterns, 2]
    scores = torch.rand(n, 2)

    instability = part_instability([positions], [scores], landmarks, visible, top_k=10)

    assert instability.shape == (1, 2)
    assert float(instability[0, 0]) == pytest.approx(0.0, abs=1e-6)
    assert float(instability[0, 1]) > 0.05
    rows = part_rows(
        ["head"],
        instability,
        instability[:, [1, 0]],
        torch.tensor([True, False]),
        torch.tensor([False, False]),
        stable_threshold=0.05,
        n_best=1,
    )
    assert rows == [
        {
            "part": "head",
            "stable_a": 1,
            "stable_b": 1,
            "instability_a": pytest.approx(0.0, abs=1e-6),
            "instability_b": pytest.approx(0.0, abs=1e-6),
            "best_a": pytest.approx(0.0, abs=1e-6),
            "best_b": pytest.approx(0.0, abs=1e-6),
            "stable_a_matched": 1,  # A's stable pattern 0 has a match
            "stable_b_matched": 0,
        }
    ]


def _layer(
    name: str, channels: int, per_filter: int, stride: float, parents: torch.Tensor
) -> LayerPatterns:
    p = channels * per_filter
    geometry = LayerGeometry(name, 0, channels, 8, 8, stride, stride * 2, stride / 2)
    return LayerPatterns(
        geometry=geometry,
        filter=torch.arange(channels).repeat_interleave(per_filter),
        mu=torch.zeros(p, 2),
        sigma=torch.full((p,), 0.5),
        parents=parents,
        parent_weight=torch.ones(parents.shape),
        parent_mean=torch.zeros(*parents.shape, 2),
        mean_position=torch.zeros(p, 2),
        mean_score=torch.ones(p),
        soft_norm=1.0,
        explained_share=0.5,
    )


def test_graph_statistics_count_edges_and_degrees() -> None:
    # 4 low patterns with parents [0, 1], [0, -1], [0, -1], [-1, -1] among 2 top patterns
    low = _layer("low", 2, 2, 4.0, torch.tensor([[0, 1], [0, -1], [0, -1], [-1, -1]]))
    top = _layer("top", 1, 2, 8.0, torch.full((2, 2), -1))
    graph = ExplanatoryGraph([low, top], GraphSettings(), torch.zeros(0, dtype=torch.bool))

    stats = graph_statistics(graph, input_size=64)

    assert stats["patterns"] == 6 and stats["edges"] == 4
    low_row, top_row = stats["layers"]
    assert low_row["parents"]["mean"] == pytest.approx(1.0)
    assert low_row["parents"]["zero_share"] == pytest.approx(0.25)
    assert low_row["children"] is None
    assert top_row["children"]["max"] == 3.0  # top pattern 0 is the parent of three
    assert top_row["children"]["mean"] == pytest.approx(2.0)
    assert low_row["spread_px"] == pytest.approx(2.0) and top_row["spread_px"] == pytest.approx(4.0)
    assert stats["mean_spread_share"] == pytest.approx((4 * 2.0 + 2 * 4.0) / 6 / 64)


def test_match_matrix_png_shades_matched_cells(tmp_path: Path) -> None:
    rows = [
        {"layer_a": "a1", "layer_b": "b1", "patterns_a": 10, "patterns_b": 20, "matched": 10},
        {"layer_a": "a1", "layer_b": "b2", "patterns_a": 10, "patterns_b": 5, "matched": 0},
    ]

    path = draw_match_matrix(rows, ["a1"], ["b1", "b2"], tmp_path / "m.png", title="t")

    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = image.convert("RGB")
        # near each cell's lower right corner, away from its text: full match dark, none white
        left, top, cell = plot._MARGIN_LEFT, plot._MARGIN_TOP, plot._CELL
        full = pixels.getpixel((left + cell - 8, top + cell - 8))
        empty = pixels.getpixel((left + 2 * cell - 8, top + cell - 8))
    assert isinstance(full, tuple) and sum(full) < 200
    assert empty == (255, 255, 255)
