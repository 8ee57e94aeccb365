"""Graph settings: the paper's defaults, the density rule, validation and round trips."""

from __future__ import annotations

import pytest

from explgraph.core.errors import InputError
from miner.graph import GraphSettings
from miner.models.spec import LayerGeometry

VGG = [
    LayerGeometry("conv4_2", 0, 512, 28, 28, 8.0, 76.0, 3.5),
    LayerGeometry("conv4_3", 1, 512, 28, 28, 8.0, 92.0, 3.5),
    LayerGeometry("conv5_2", 2, 512, 14, 14, 16.0, 164.0, 7.5),
    LayerGeometry("conv5_3", 3, 512, 14, 14, 16.0, 196.0, 7.5),
]


def test_defaults_are_the_papers() -> None:
    s = GraphSettings()
    assert (s.parents, s.candidate_pool, s.iterations, s.grid) == (15, 600, 20, 6)
    assert (s.window, s.sigma_map, s.truncate, s.tau, s.border) == (0.15, 0.025, 3.0, 0.1, 0.1)
    assert s.sigma_clip == (0.1, 1.0)
    assert s.densities(VGG) == (0.05, 0.05, 0.1, 0.1)
    # 40 and 20 patterns per filter: 61,440 patterns for VGG-16
    assert s.patterns_per_filter(VGG) == (40, 40, 20, 20)
    assert (
        sum(n * g.channels for n, g in zip(s.patterns_per_filter(VGG), VGG, strict=True)) == 61440
    )


def test_explicit_density_per_layer() -> None:
    s = GraphSettings(density=(0.01, 0.02, 0.03, 0.04))
    assert s.patterns_per_filter(VGG) == (8, 16, 6, 8)
    with pytest.raises(InputError, match="one per layer"):
        GraphSettings(density=(0.1,)).densities(VGG)
    with pytest.raises(InputError, match="at most 1"):
        GraphSettings(density=(2.0, 2.0, 2.0, 2.0)).patterns_per_filter(VGG)


def test_round_trip_through_a_plain_dict() -> None:
    s = GraphSettings(density=(0.1, 0.2, 0.3, 0.4), seed=7, use_flip=False, sigma_clip=(0.2, 0.9))
    d = s.to_dict()
    assert isinstance(d["density"], list)
    assert GraphSettings.from_dict(d) == s
    with pytest.raises(InputError, match="unknown graph settings"):
        GraphSettings.from_dict({**d, "bogus": 1})


@pytest.mark.parametrize(
    "kw",
    [
        {"parents": 0},
        {"iterations": -1},
        {"sigma_clip": (1.0, 0.5)},
        {"dtype": "float16"},
        {"density_top": 0.0},
        {"chunk_size": 0},
    ],
)
def test_bad_values_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(InputError, match="invalid graph settings"):
        GraphSettings(**kw)  # type: ignore[arg-type]
