"""Speed work must not change the numbers: same seed → same graph, and the same graph as before.

``tests/assets/graph_golden.npz`` holds the learned graph and its inference on a tiny fixed
problem as computed by the implementation before issue 13's optimisations (see
:mod:`tests.helpers.golden_graph`). Today's code must reproduce it:

* in float64 within ``rtol = atol = 1e-9``: the optimisations reorder float sums (matrix products
  in place of scatter-adds, factorised exponentials), which moves a float64 result by ~1e-15
  per operation; 1e-9 leaves room for that through four EM iterations while any change of the
  method (a different formula, a lost term, another arg-max or parent) moves values by far more;
* in float32 within ``rtol = 1e-4, atol = 1e-5`` (float32 rounding is ~6e-8 per operation);
* discrete outcomes (parents, flips) exactly.

Inference is checked on the golden graph itself (rebuilt from the file), so an inference change
is not hidden behind, or blamed on, learning.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miner.graph import ExplanatoryGraph, LayerPatterns, infer_graph, learn_graph
from miner.graph.kernels import KERNELS_ENV
from tests.helpers.golden_graph import (
    DTYPES,
    GOLDEN,
    IMAGES,
    LAYERS,
    golden_features,
    golden_settings,
)

TOLERANCE = {"float64": (1e-9, 1e-9), "float32": (1e-4, 1e-5)}
LAYER_FIELDS = ("mu", "sigma", "parent_weight", "parent_mean", "mean_position", "mean_score")


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as stored:
        return {k: stored[k] for k in stored.files}


def close(actual: torch.Tensor | float, expected: np.ndarray, dtype: str, what: str) -> None:
    rtol, atol = TOLERANCE[dtype]
    got = np.asarray(actual.double().numpy() if isinstance(actual, torch.Tensor) else actual)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=what)


def graph_from(golden: dict[str, np.ndarray], dtype: str) -> ExplanatoryGraph:
    """The golden graph rebuilt from the file."""
    settings = golden_settings(dtype)
    per_filter = settings.patterns_per_filter(LAYERS)
    layers = []
    for i, geometry in enumerate(LAYERS):

        def arr(name: str, i: int = i) -> torch.Tensor:
            return torch.from_numpy(golden[f"{dtype}/layer{i}/{name}"]).to(settings.torch_dtype)

        layers.append(
            LayerPatterns(
                geometry=geometry,
                filter=torch.arange(geometry.channels).repeat_interleave(per_filter[i]),
                mu=arr("mu"),
                sigma=arr("sigma"),
                parents=torch.from_numpy(golden[f"{dtype}/layer{i}/parents"]),
                parent_weight=arr("parent_weight"),
                parent_mean=arr("parent_mean"),
                mean_position=arr("mean_position"),
                mean_score=arr("mean_score"),
                soft_norm=float(golden[f"{dtype}/layer{i}/soft_norm"]),
                explained_share=float(golden[f"{dtype}/layer{i}/explained_share"]),
            )
        )
    return ExplanatoryGraph(layers, settings, torch.from_numpy(golden[f"{dtype}/flips"]))


@pytest.mark.parametrize("kernels", ["compiled", "torch"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_learning_reproduces_the_golden_graph(
    golden: dict[str, np.ndarray], dtype: str, kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CPU paths of the within-filter competition (miner.graph.kernels) learn the graph."""
    monkeypatch.setenv(KERNELS_ENV, kernels)
    graph = learn_graph(golden_features(), golden_settings(dtype))
    assert graph.flips.tolist() == golden[f"{dtype}/flips"].tolist()
    for i, lp in enumerate(graph.layers):
        key = f"{dtype}/layer{i}"
        assert lp.parents.tolist() == golden[f"{key}/parents"].tolist(), f"{key} parents"
        for name in LAYER_FIELDS:
            close(getattr(lp, name), golden[f"{key}/{name}"], dtype, f"{key}/{name}")
        close(lp.soft_norm, golden[f"{key}/soft_norm"], dtype, f"{key}/soft_norm")
        close(lp.explained_share, golden[f"{key}/explained_share"], dtype, f"{key}/share")


@pytest.mark.parametrize("kernels", ["compiled", "torch"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_inference_reproduces_the_golden_inference(
    golden: dict[str, np.ndarray], dtype: str, kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CPU paths of the candidate search (miner.graph.kernels) infer the same firings."""
    monkeypatch.setenv(KERNELS_ENV, kernels)
    graph, features = graph_from(golden, dtype), golden_features()
    runs = {
        "chosen": infer_graph(graph, features, 0, IMAGES),
        "forced": infer_graph(graph, features, 3, 15, flipped=graph.flips[3:15]),
    }
    for tag, inference in runs.items():
        assert inference.flipped.tolist() == golden[f"{dtype}/{tag}/flipped"].tolist()
        for i, layer in enumerate(inference.layers):
            for name in ("positions", "expected", "score", "soft"):
                key = f"{dtype}/{tag}/layer{i}/{name}"
                close(getattr(layer, name), golden[key], dtype, key)


def test_same_seed_gives_a_bit_identical_graph_and_inference() -> None:
    features = golden_features()
    settings = golden_settings("float32")
    first, second = learn_graph(features, settings), learn_graph(features, settings)
    assert torch.equal(first.flips, second.flips)
    for a, b in zip(first.layers, second.layers, strict=True):
        for name in (*LAYER_FIELDS, "parents"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert a.soft_norm == b.soft_norm and a.explained_share == b.explained_share
    inf_a, inf_b = infer_graph(first, features, 0, IMAGES), infer_graph(second, features, 0, IMAGES)
    for la, lb in zip(inf_a.layers, inf_b.layers, strict=True):
        for name in ("positions", "expected", "score", "soft"):
            assert torch.equal(getattr(la, name), getattr(lb, name)), name


def test_another_seed_gives_another_graph() -> None:
    """The golden comparison can fail: a different seed moves the patterns far outside it."""
    from dataclasses import replace

    features = golden_features()
    other = learn_graph(features, replace(golden_settings("float64"), seed=6))
    with np.load(GOLDEN) as stored:
        expected = stored["float64/layer2/mu"]
    assert not np.allclose(other.layers[2].mu.numpy(), expected, rtol=1e-9, atol=1e-9)
