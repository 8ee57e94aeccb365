"""The loaded-graph object's statistics policy and the shared picture helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from explgraph.core.errors import InputError
from queries.graphs import StoredGraph
from queries.loaded import LoadedGraph
from queries.pictures import pixel_canvas, save_png


def _loaded(tmp_path: Path, params: dict[str, Any]) -> LoadedGraph:
    stored = StoredGraph(model_id="m", model={"input_size": 32}, params=params, graph=None)  # type: ignore[arg-type]
    return LoadedGraph(stored, cache_dir=tmp_path, device=torch.device("cpu"))


class _Features:
    """The two things normalisation reads of a feature set."""

    def __init__(self) -> None:
        self.layers = [object(), object()]

    def std(self, layer: int) -> np.ndarray:
        return np.full((1, 2, 2), 2.0 + layer, dtype=np.float32)


def test_without_the_mining_cache_the_statistics_are_none_or_recomputed(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, {"features_key": "gone", "images": str(tmp_path / "nowhere")})
    assert loaded.mining_statistics(recompute=False) is None
    with pytest.raises(InputError, match=r"training images of m .* are gone"):
        loaded.mining_statistics(recompute=True)


def test_images_normalise_themselves_only_without_statistics() -> None:
    features: Any = _Features()
    own = LoadedGraph.normalised(features, None)
    mined = LoadedGraph.normalised(features, [np.ones((1, 2, 2), np.float32)] * 2)
    assert own.normalisation == "self" and mined.normalisation == "mined"


def test_pixel_canvas_is_exactly_its_size_in_pixels(tmp_path: Path) -> None:
    figure, axes = pixel_canvas(37, 23)
    axes.imshow(np.zeros((23, 37, 3)), extent=(0, 37, 23, 0))
    path = save_png(figure, tmp_path / "p.png", what="the test picture")
    with Image.open(path) as png:
        assert png.size == (37, 23)


def test_an_unwritable_picture_is_one_clear_error(tmp_path: Path) -> None:
    figure, _ = pixel_canvas(4, 4)
    with pytest.raises(InputError, match=r"cannot write the test picture to .*pick another path"):
        save_png(figure, tmp_path / "missing" / "p.png", what="the test picture")
