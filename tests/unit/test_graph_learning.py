"""Learning as a whole: determinism, the evaluation controls, flips, save/load, checkpoints."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

import pytest
import torch

from explgraph.core.errors import InputError, MiningError
from explgraph.core.progress import NULL_PROGRESS, Task
from miner.graph import ExplanatoryGraph, TensorFeatures, learn_graph
from miner.graph.types import LayerPatterns
from tests.unit.test_graph_planted import LOWER, UPPER, blob, planted, settings


def assert_same_graph(a: ExplanatoryGraph, b: ExplanatoryGraph, *, exact: bool) -> None:
    assert torch.equal(a.flips, b.flips)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert torch.equal(la.parents, lb.parents)
        for name in ("mu", "sigma", "parent_weight", "parent_mean", "mean_position", "mean_score"):
            x, y = getattr(la, name), getattr(lb, name)
            if exact:
                assert torch.equal(x, y), name
            else:
                torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
        assert la.explained_share == pytest.approx(lb.explained_share, rel=1e-4)
        assert la.soft_norm == pytest.approx(lb.soft_norm, rel=1e-4)


def test_same_seed_gives_a_bit_identical_graph() -> None:
    features, _ = planted(16)
    a = learn_graph(features, settings(iterations=3, seed=5))
    b = learn_graph(features, settings(iterations=3, seed=5))
    assert_same_graph(a, b, exact=True)
    c = learn_graph(features, settings(iterations=3, seed=6))
    assert not torch.equal(a.layers[0].mu, c.layers[0].mu)


def test_iterations_zero_gives_the_initial_patterns() -> None:
    features, _ = planted(8)
    graph = learn_graph(features, settings(iterations=0))
    for lp in graph.layers:
        h, w = lp.geometry.height, lp.geometry.width
        assert torch.equal(lp.mu, lp.mu.round())  # on grid units
        assert bool((lp.mu[:, 0] < w).all() and (lp.mu[:, 1] < h).all())
        units = (lp.mu[:, 1] * w + lp.mu[:, 0]).reshape(lp.geometry.channels, lp.per_filter)
        assert all(len(set(row.tolist())) == lp.per_filter for row in units)  # distinct per filter
        torch.testing.assert_close(lp.sigma, torch.full_like(lp.sigma, 0.15 * h))
        assert bool((lp.parents == -1).all())
        assert lp.mean_position.shape == (lp.num_patterns, 2)
    # the same windows as the learned graph starts from
    learned = learn_graph(features, settings(iterations=1, use_parents=False))
    for a, b in zip(graph.layers, learned.layers, strict=True):
        assert not torch.equal(a.mu, b.mu)


def test_without_parents_every_layer_is_learned_like_the_top() -> None:
    features, _ = planted(16)
    graph = learn_graph(features, settings(use_parents=False, iterations=3))
    assert bool((graph.layers[0].parents == -1).all())
    assert float(graph.layers[0].parent_weight.abs().sum()) == 0.0
    with_parents = learn_graph(features, settings(iterations=3))
    assert bool((with_parents.layers[0].parents >= 0).all())
    offsets = with_parents.layers[0].edge_offsets(UPPER)
    assert offsets.shape == (with_parents.layers[0].num_patterns, 2, 2)


def test_top_layer_chooses_the_orientation_that_fits() -> None:
    n = 12
    gen = torch.Generator().manual_seed(0)
    centre = torch.tensor([[2.5, 5.0]]).expand(n, 2) + 0.5 * torch.rand(n, 2, generator=gen)
    upper = torch.zeros(n, 3, 10, 10)
    upper[:, 0] = blob(10, 10, centre, sigma=1.5)
    turned = torch.arange(n) % 2 == 1  # these images show the object facing the other way
    upper[turned] = upper[turned].flip(-1)
    lower = torch.rand(n, 3, 20, 20, generator=gen) * 0.01
    features = TensorFeatures(
        [lower, upper], [LOWER, UPPER], flipped_maps=[lower.flip(-1), upper.flip(-1)]
    )
    graph = learn_graph(features, settings(use_flip=True, density=(1 / 400, 1 / 100), iterations=4))
    # one orientation per image such that every image shows the object the same way
    assert torch.equal(graph.flips ^ graph.flips[0], turned ^ turned[0])


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    features, _ = planted(8)
    graph = learn_graph(features, settings(iterations=2))
    path = tmp_path / "graph.pt"
    graph.save(path)
    back = ExplanatoryGraph.load(path)
    assert back.settings == graph.settings
    assert_same_graph(graph, back, exact=True)
    assert back.layers[1].geometry == UPPER
    (tmp_path / "junk.pt").write_bytes(b"not a graph")
    with pytest.raises(InputError, match="re-run learning"):
        ExplanatoryGraph.load(tmp_path / "junk.pt")


def test_bad_inputs() -> None:
    features, _ = planted(4)
    with pytest.raises(InputError, match="one per layer"):
        learn_graph(features, settings(density=(0.1,)))
    upside = TensorFeatures([features.chunk(1, 0, 4), features.chunk(0, 0, 4)], [UPPER, LOWER])
    with pytest.raises(InputError, match="bottom"):
        learn_graph(upside, settings())
    with pytest.raises(InputError, match="do not match"):
        TensorFeatures([torch.rand(4, 3, 5, 5)], [LOWER])
    with pytest.raises(MiningError, match="key"):
        learn_graph(features, settings(), checkpoint_dir="/nonexistent", key="")


class _Recorder:
    """Progress that records the bars opened and can stop the run at a chosen bar."""

    def __init__(self, stop_at: str | None = None) -> None:
        self.opened: list[str] = []
        self.stop_at = stop_at

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        self.opened.append(description)
        if description == self.stop_at:
            raise KeyboardInterrupt
        return NULL_PROGRESS.task(description, total)

    def log(self, message: str) -> None:
        return None

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        return None


def test_interrupted_run_resumes_from_its_last_finished_layer(tmp_path: Path) -> None:
    features, _ = planted(12)
    cfg = settings(iterations=3)
    reference = learn_graph(features, cfg)
    first = _Recorder(stop_at="learn lower")
    with pytest.raises(KeyboardInterrupt):
        learn_graph(features, cfg, checkpoint_dir=str(tmp_path), progress=first)
    assert first.opened == ["learn upper", "learn lower"]
    second = _Recorder()
    resumed = learn_graph(features, cfg, checkpoint_dir=str(tmp_path), progress=second)
    assert second.opened == ["learn lower"]  # the top layer was not learned again
    assert_same_graph(reference, resumed, exact=False)
    third = _Recorder()
    again = learn_graph(features, cfg, checkpoint_dir=str(tmp_path), progress=third)
    assert third.opened == []
    assert_same_graph(resumed, again, exact=True)
    # other settings are another run: nothing is reused
    fourth = _Recorder()
    learn_graph(features, settings(iterations=2), checkpoint_dir=str(tmp_path), progress=fourth)
    assert fourth.opened == ["learn upper", "learn lower"]


def test_a_damaged_checkpoint_is_learned_again_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    features, _ = planted(8)
    cfg = settings(iterations=1)
    learn_graph(features, cfg, checkpoint_dir=str(tmp_path))
    (top_file,) = tmp_path.glob("graph-*/layer1.pt")
    top_file.write_bytes(b"not a checkpoint")
    again = _Recorder()
    with caplog.at_level(logging.INFO, logger="miner.graph"):
        learn_graph(features, cfg, checkpoint_dir=str(tmp_path), progress=again)
    assert again.opened == ["learn upper", "learn lower"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(top_file) in m and "unreadable" in m for m in warnings)
    assert not any("resuming" in r.getMessage() for r in caplog.records)
    resumed = _Recorder()
    with caplog.at_level(logging.INFO, logger="miner.graph"):
        learn_graph(features, cfg, checkpoint_dir=str(tmp_path), progress=resumed)
    assert resumed.opened == []
    assert any("resuming: layers [0, 1]" in r.getMessage() for r in caplog.records)


def test_layer_patterns_state_round_trip() -> None:
    features, _ = planted(4)
    layer = learn_graph(features, settings(iterations=1)).layers[0]
    back = LayerPatterns.from_state(layer.to_state())
    assert back.geometry == layer.geometry
    assert torch.equal(back.mu, layer.mu) and back.explained_share == layer.explained_share
