"""Diagnose's context canvas: a translated graph reads padded maps exactly as the original reads
the crop, and the off-object share counts firing mass outside the crop square."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from miner.graph import TensorFeatures, infer_graph, learn_graph
from queries.diagnose import (
    canvas_box,
    canvas_margin,
    canvas_std,
    off_object_share,
    translate_graph,
)
from tests.unit.test_graph_planted import LOWER, UPPER, planted, settings


def test_margin_is_a_whole_number_of_units_on_every_layer() -> None:
    margin = canvas_margin(0.25, 224, [8.0, 16.0])
    assert margin % 16 == 0 and margin == 64
    assert canvas_margin(0.01, 96, [8.0]) == 8  # never zero


def test_canvas_box_puts_the_object_at_the_margin() -> None:
    box = (10.0, 20.0, 110.0, 70.0)
    x0, y0, x1, y1 = canvas_box(box, 96, 24)
    scale_x, scale_y = (x1 - x0) / (96 + 48), (y1 - y0) / (96 + 48)
    # object corners land at canvas pixels (24, 24) and (120, 120)
    assert (box[0] - x0) / scale_x == pytest.approx(24)
    assert (box[3] - y0) / scale_y == pytest.approx(120)


def test_translated_graph_reads_padded_maps_like_the_original() -> None:
    features, _ = planted(12)
    graph = learn_graph(features, settings(), device="cpu")
    margin = 32  # 2 units of the upper (stride 16) map, 4 of the lower (stride 8)
    lower = [features.chunk(0, 0, 12), features.chunk(1, 0, 12)]
    pads = [int(margin / g.stride) for g in (LOWER, UPPER)]
    padded = [F.pad(m, (p, p, p, p)) for m, p in zip(lower, pads, strict=True)]
    geometry = [
        dataclasses.replace(g, height=g.height + 2 * p, width=g.width + 2 * p)
        for g, p in zip((LOWER, UPPER), pads, strict=True)
    ]
    canvas = TensorFeatures(padded, geometry)
    moved = translate_graph(graph, geometry, margin)
    plain = infer_graph(graph, features, 0, 12, flipped=False)
    shifted = infer_graph(moved, canvas, 0, 12, flipped=False)
    for index, geo in enumerate((LOWER, UPPER)):
        # Near the crop's edge the canvas may see mass that smoothing spread past it, which the
        # crop cannot: compare the firings at least two smoothing widths inside.
        units = plain.layers[index].positions
        reach = 2 * 3.0 * 0.025 * geo.height + 1.0
        inner = ((units >= reach) & (units <= geo.height - 1 - reach)).all(dim=-1)
        assert inner.float().mean() > 0.2  # the planted firings sit well inside
        moved_px = shifted.pixels(index) - margin
        torch.testing.assert_close(moved_px[inner], plain.pixels(index)[inner], atol=1e-3, rtol=0)
        torch.testing.assert_close(
            shifted.layers[index].score[inner],
            plain.layers[index].score[inner],
            atol=1e-5,
            rtol=1e-4,
        )


def test_canvas_std_keeps_training_std_over_the_object() -> None:
    std = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    geometry = [dataclasses.replace(LOWER, channels=2, height=7, width=7)]
    out = canvas_std([std], geometry, margin=16)[0]  # 2 units of stride 8
    np.testing.assert_array_equal(out[:, 2:5, 2:5], std)
    assert out[0, 0, 0] == np.median(std[0]) and out[1, 6, 6] == np.median(std[1])


def test_off_object_share_weights_by_score() -> None:
    # pattern 0: inside on both images; pattern 1: outside on the strong image only
    positions = torch.tensor(
        [[[10.0, 10.0], [-5.0, 50.0]], [[20.0, 30.0], [40.0, 40.0]]]
    )  # [N=2, P=2, 2]
    scores = torch.tensor([[1.0, 3.0], [1.0, 1.0]])
    share = off_object_share(positions, scores, size=96)
    assert share[0] == 0.0
    assert share[1] == pytest.approx(0.75)
    assert off_object_share(positions, torch.zeros(2, 2), size=96).tolist() == [0.0, 0.0]
