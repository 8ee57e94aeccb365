"""Top-down inference (docs/method.md §4): the parent vote, candidate grid and whole-graph pass."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from explgraph.core.errors import InputError, MiningError
from miner.graph import GraphSettings, TensorFeatures, infer_graph, learn_graph
from miner.graph.evidence import smooth
from miner.graph.inference import LayerParams, evaluate, node_prior
from miner.models.spec import LayerGeometry
from tests.unit.test_graph_planted import LOWER, UPPER, planted, settings

CHILD = LayerGeometry("child", 0, 2, 12, 12, 8.0, 30.0, 4.0)


def child_params(parent_index: torch.Tensor, upper_sigma: torch.Tensor) -> LayerParams:
    p, m = parent_index.shape
    gen = torch.Generator().manual_seed(1)
    return LayerParams(
        geometry=CHILD,
        per_filter=p // 2,
        mu=torch.rand(p, 2, generator=gen, dtype=torch.float64) * 11,
        sigma=torch.full((p,), 1.2, dtype=torch.float64),
        parent_index=parent_index,
        parent_mean=torch.rand(p, m, 2, generator=gen, dtype=torch.float64) * 5,
        upper_sigma=upper_sigma,
        ratio=2.0,
        settings=GraphSettings(parents=m),
    )


def test_parent_vote_matches_the_formula() -> None:
    index = torch.tensor([[0, 2, -1], [1, -1, -1], [2, 0, 1], [-1, -1, -1]])
    up_sigma = torch.tensor([0.5, 0.9, 1.3], dtype=torch.float64)
    params = child_params(index, up_sigma)
    upper = torch.rand(2, 3, 2, dtype=torch.float64) * 6
    centre, s_tilde, log_lambda = node_prior(params, upper, 2)
    for i in range(2):
        for p in range(4):
            ps = [int(j) for j in index[p] if j >= 0]
            if not ps:
                torch.testing.assert_close(centre[i, p], params.mu[p])
                assert float(s_tilde[i, p]) == pytest.approx(0.15 * 12)
                assert float(log_lambda[i, p]) == 0.0
                continue
            m = len(ps)
            cols = [k for k in range(3) if index[p, k] >= 0]
            deltas = [
                (upper[i, j] - params.parent_mean[p, k]) * 2.0
                for j, k in zip(ps, cols, strict=True)
            ]
            sig = [float(up_sigma[j]) * 2.0 for j in ps]
            w = [1 / (m * s**2) for s in sig]
            shift = sum(wi * d for wi, d in zip(w, deltas, strict=True)) / sum(w)
            st = sum(w) ** -0.5
            lam = st * math.prod(
                (1 / s) * math.exp(-float(((shift - d) ** 2).sum()) / (2 * m * s**2))
                for s, d in zip(sig, deltas, strict=True)
            )
            torch.testing.assert_close(centre[i, p], params.mu[p] + shift)
            assert float(s_tilde[i, p]) == pytest.approx(st)
            assert float(log_lambda[i, p]) == pytest.approx(math.log(lam))


def test_parents_all_shifted_move_the_child_by_the_stride_ratio() -> None:
    index = torch.tensor([[0, 1, 2], [2, 1, 0]])
    params = child_params(index, torch.tensor([0.5, 0.9, 1.3], dtype=torch.float64))
    upper = torch.rand(1, 3, 2, dtype=torch.float64) * 6
    moved = upper + torch.tensor([1.5, -0.5], dtype=torch.float64)
    a, sa, la = node_prior(params, upper, 1)
    b, sb, lb = node_prior(params, moved, 1)
    torch.testing.assert_close(
        b - a, torch.tensor([3.0, -1.0], dtype=torch.float64).expand(1, 2, 2)
    )
    torch.testing.assert_close(sa, sb)
    torch.testing.assert_close(la, lb)  # agreement only depends on relative deviations


def test_candidates_pick_the_evidence_peak_inside_the_window() -> None:
    params = child_params(torch.full((2, 1), -1), torch.ones(1, dtype=torch.float64))
    params.mu = torch.tensor([[5.0, 5.0], [3.0, 8.0]], dtype=torch.float64)
    mass = torch.zeros(1, 2, 12, 12, dtype=torch.float64)
    mass[0, 0, 6, 6] = 1.0  # inside pattern 0's window (h = min(1.8, 3.6) = 1.8)
    ev = evaluate(params, smooth(mass, 0.3, 3.0), None)
    pos, score, soft = ev.best()
    # the best of the 6x6 candidates (spacing 0.6) nearest to (6, 6)
    torch.testing.assert_close(pos[0, 0], torch.tensor([5.9, 5.9], dtype=torch.float64))
    assert float(score[0, 0]) > 0 and float(score[0, 1]) == 0.0  # filter 1 has no mass
    assert float(soft[0, 0]) >= float(score[0, 0])


def test_inference_does_not_depend_on_the_chunk_size() -> None:
    features, _ = planted(12)
    graph = learn_graph(features, settings(iterations=3))
    a = infer_graph(graph, features, 2, 11)
    small = replace(graph, settings=replace(graph.settings, chunk_size=4, work_elements=500))
    b = infer_graph(small, features, 2, 11)
    for la, lb in zip(a.layers, b.layers, strict=True):
        torch.testing.assert_close(la.positions, lb.positions)
        torch.testing.assert_close(la.score, lb.score)
        torch.testing.assert_close(la.soft, lb.soft)
    # the learning images' soft scores average to 1 by construction of the normaliser
    full = infer_graph(graph, features, 0, 12)
    assert float(full.layers[0].soft.mean()) == pytest.approx(1.0, rel=1e-4)


def test_flip_choice_and_pixels_in_the_original_frame() -> None:
    features, _ = planted(8)
    mirrored = TensorFeatures(
        [features.chunk(i, 0, 8) for i in range(2)],
        [LOWER, UPPER],
        flipped_maps=[features.chunk(i, 0, 8).flip(-1) for i in range(2)],
    )
    graph = learn_graph(features, settings(iterations=2))
    graph = replace(graph, settings=replace(graph.settings, use_flip=True))
    plain = infer_graph(graph, mirrored, 0, 8, flipped=False)
    forced = infer_graph(graph, mirrored, 0, 8, flipped=True)
    chosen = infer_graph(graph, mirrored, 0, 8)
    # the graph was learned on the unmirrored maps: they explain them better
    assert not bool(chosen.flipped.any())
    torch.testing.assert_close(chosen.layers[1].positions, plain.layers[1].positions)
    assert bool(forced.flipped.all())
    px = forced.pixels(1, input_size=160)
    raw = UPPER.to_pixels(forced.layers[1].positions)
    torch.testing.assert_close(px[..., 0], 160 - raw[..., 0])
    torch.testing.assert_close(px[..., 1], raw[..., 1])


def test_bad_requests_say_what_to_do() -> None:
    features, _ = planted(4)
    graph = learn_graph(features, settings(iterations=1))
    with pytest.raises(InputError, match="outside"):
        infer_graph(graph, features, 0, 9)
    with pytest.raises(InputError, match="mirrored"):
        infer_graph(graph, features, 0, 4, flipped=True)
    with pytest.raises(InputError, match="one per image"):
        infer_graph(graph, features, 0, 4, flipped=torch.zeros(3, dtype=torch.bool))
    other = TensorFeatures([torch.rand(4, 3, 20, 20)], [LOWER])
    with pytest.raises(MiningError, match="same model and layers"):
        infer_graph(graph, other, 0, 4)
