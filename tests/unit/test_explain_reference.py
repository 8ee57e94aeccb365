"""The explain command's "fired" reference (a quantile of the pattern's mining-image scores)
and the heat map's colour scale, on hand-made numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from queries.explain import Explanation, heat_scale, training_quantiles, write_heatmap


def fires(scores: dict[str, list[float]], n_images: int) -> pd.DataFrame:
    """FIRES rows: pattern ``p`` fired on images 0.. with ``scores[p]``; images up to
    ``n_images`` appear through a filler pattern (every mining image has some FIRES edge)."""
    rows = [
        {"image": f"i{k}", "pattern_id": pattern, "score": value}
        for pattern, values in scores.items()
        for k, value in enumerate(values)
    ]
    rows += [{"image": f"i{k}", "pattern_id": "filler", "score": 1.0} for k in range(n_images)]
    return pd.DataFrame(rows)


def test_reference_is_the_rth_best_training_score() -> None:
    # 30 mining images, quantile 0.9: r = ceil(0.1 * 30) = 3, the third best score
    table = fires({"a": [9.0, 1.0, 5.0, 7.0, 3.0], "b": [2.0]}, n_images=30)
    got = training_quantiles(table, 0.9)
    assert got["a"] == 5.0
    assert got["b"] == 2.0  # fewer stored than r: its lowest stored (a stricter quantile)
    assert math.isclose(training_quantiles(table, 0.99)["a"], 9.0)  # r = 1: its best


def test_reference_rank_grows_with_the_number_of_images() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # 20 stored scores, best first
    assert training_quantiles(fires({"a": values}, 50), 0.9)["a"] == 16.0  # r = 5
    assert training_quantiles(fires({"a": values}, 1000), 0.9)["a"] == 1.0  # r capped at 20


def test_empty_fires_give_no_reference() -> None:
    empty = pd.DataFrame(columns=["image", "pattern_id", "score"])
    assert training_quantiles(empty, 0.9).empty


def test_heat_scale_clips_outliers() -> None:
    heat = np.zeros((50, 50))
    heat[10:20, 10:20] = 1.0
    heat[0, 0] = 1e6  # one off-domain pattern
    assert heat_scale(heat) == pytest.approx(1.0)
    assert heat_scale(np.zeros((4, 4))) == 1.0


def test_heatmap_png_has_a_colour_bar_and_title(tmp_path: Path) -> None:
    image = tmp_path / "img.png"
    Image.fromarray(np.full((40, 60, 3), 128, dtype=np.uint8)).save(image)
    heat = np.zeros((40, 60))
    heat[10:30, 20:40] = 2.0
    explanation = Explanation(
        model_id="m",
        image=image,
        box=(0.0, 0.0, 60.0, 40.0),
        threshold=1.0,
        flipped=False,
        prediction=[],
        fired={},
        n_patterns={},
        heatmap=heat,
    )
    out = tmp_path / "heat.png"
    write_heatmap(explanation, out)
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size[0] > 60 * 2 and png.size[1] > 40 * 2  # scaled up, bar and title added
        colours = np.asarray(png.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 20  # a colour ramp, not two flat colours
