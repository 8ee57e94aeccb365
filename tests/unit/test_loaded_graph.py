"""The loaded-graph object's statistics policy and the shared picture helper."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from explgraph.core.errors import InputError, StoreError
from graphstore.arrays import encode_array
from queries.graphs import StoredGraph
from queries.loaded import LayerStatistics, LoadedGraph
from queries.pictures import pixel_canvas, save_png


def _loaded(
    tmp_path: Path, params: dict[str, Any], statistics: list[LayerStatistics] | None = None
) -> LoadedGraph:
    graph: Any = SimpleNamespace(layers=[SimpleNamespace(geometry=SimpleNamespace(name="c1"))])
    stored = StoredGraph(model_id="m", model={"input_size": 32}, params=params, graph=graph)
    return LoadedGraph(
        stored,
        cache_dir=tmp_path,
        device=torch.device("cpu"),
        statistics=statistics or [],
        command="`explgraph locate`",
    )


class _Features:
    """The two things normalisation reads of a feature set."""

    def __init__(self) -> None:
        self.layers = [object(), object()]

    def std(self, layer: int) -> np.ndarray:
        return np.full((1, 2, 2), 2.0 + layer, dtype=np.float32)


def test_the_statistics_come_from_the_store_bit_for_bit(tmp_path: Path) -> None:
    std = np.random.default_rng(0).random((3, 2, 2), dtype=np.float32)
    peaks = np.arange(3, dtype=np.float32)
    stored = [LayerStatistics(encode_array(std), encode_array(peaks))]
    loaded = _loaded(tmp_path, {"features_key": "gone"}, stored)
    assert np.array_equal(loaded.mining_statistics()[0], std)
    assert loaded.mining_statistics()[0].dtype == np.float32
    assert torch.equal(loaded.filter_peaks()[0], torch.from_numpy(peaks))


def test_a_model_without_stored_statistics_stops_with_one_line(tmp_path: Path) -> None:
    """An older store never falls back to the images' own std (or the cache): one line naming
    the command and the upgrade."""
    loaded = _loaded(tmp_path, {"features_key": "gone"}, [LayerStatistics(None, None)])
    for read in (loaded.mining_statistics, loaded.filter_peaks):
        with pytest.raises(StoreError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message
        assert "`explgraph locate`" in message and "`explgraph store upgrade`" in message
        assert "store format 1" in message


def test_only_learning_anew_reads_the_training_images(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, {"features_key": "gone", "images": str(tmp_path / "nowhere")})
    with pytest.raises(InputError, match=r"training images of m .* are gone"):
        loaded.mining_features()


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
