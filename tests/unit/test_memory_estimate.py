"""The memory estimate before mining: refuses the 20 GB model of issue 12, passes small runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from explgraph.core.errors import InputError
from miner.graph import GraphSettings
from miner.memory import check_mining_fits, estimate_mining, format_bytes, parse_bytes
from miner.models.spec import LayerGeometry


def _layer(name: str, index: int, channels: int, side: int, stride: float) -> LayerGeometry:
    return LayerGeometry(name, index, channels, side, side, stride, 3.0, 0.5)


TWO_CONVS = [_layer("conv1", 0, 8, 224, 1.0), _layer("conv2", 1, 16, 224, 1.0)]
VGG_TOP = [_layer("conv4_3", 0, 512, 28, 8.0), _layer("conv5_3", 1, 512, 14, 16.0)]


def test_two_convs_without_pooling_is_refused_under_defaults() -> None:
    estimate = estimate_mining(
        TWO_CONVS, n_images=40, settings=GraphSettings(), batch_size=32, base=0
    )
    assert estimate.peak > 20 * 2**30  # it grew past 20 GB and was killed
    with pytest.raises(InputError) as caught:
        check_mining_fits(estimate, max_memory=None, available=19 * 2**30)
    message = str(caught.value)
    assert "\n" not in message
    assert "layer conv2" in message and "80,288 patterns" in message
    assert "--density" in message and "--max-memory" in message


def test_lower_density_makes_it_fit() -> None:
    settings = GraphSettings(density_top=0.002, density_low=0.002)
    estimate = estimate_mining(TWO_CONVS, n_images=40, settings=settings, batch_size=32, base=0)
    check_mining_fits(estimate, max_memory=None, available=8 * 2**30)


def test_vgg_top_layers_on_a_few_hundred_images_fit_in_8_gb() -> None:
    estimate = estimate_mining(VGG_TOP, n_images=300, settings=GraphSettings(), batch_size=32)
    check_mining_fits(estimate, max_memory=8 * 2**30)


def test_max_memory_is_the_limit_when_given() -> None:
    estimate = estimate_mining(VGG_TOP, n_images=300, settings=GraphSettings(), batch_size=32)
    with pytest.raises(InputError, match=r"but --max-memory 1\.0 MB"):
        check_mining_fits(estimate, max_memory=2**20, available=2**40)


def test_more_images_cost_more_and_chunks_bound_the_working_set() -> None:
    small = estimate_mining(VGG_TOP, n_images=100, settings=GraphSettings(), batch_size=8, base=0)
    large = estimate_mining(VGG_TOP, n_images=5000, settings=GraphSettings(), batch_size=8, base=0)
    assert large.peak > small.peak
    fine = GraphSettings(chunk_size=4)
    chunked = estimate_mining(VGG_TOP, n_images=5000, settings=fine, batch_size=8, base=0)
    assert max(x.working for x in chunked.layers) < max(x.working for x in large.layers)


def test_feature_cache_larger_than_the_disk_is_refused(tmp_path: Path) -> None:
    estimate = estimate_mining(VGG_TOP, n_images=10**9, settings=GraphSettings(), batch_size=8)
    with pytest.raises(InputError, match=r"the feature cache needs about .* free"):
        check_mining_fits(estimate, max_memory=2**62, cache_dir=tmp_path / "not" / "yet")


@pytest.mark.parametrize(
    ("text", "value"),
    [("8G", 8 * 2**30), ("512MB", 512 * 2**20), ("1.5 GiB", int(1.5 * 2**30)), ("1000", 1000)],
)
def test_parse_bytes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


def test_parse_bytes_refuses_garbage() -> None:
    with pytest.raises(InputError, match="--max-memory 'lots' is not a size"):
        parse_bytes("lots")


def test_format_bytes() -> None:
    assert format_bytes(3 * 2**30) == "3.0 GB"
    assert format_bytes(12) == "12 B"
