"""Learning on planted structure: the graph must find what was put into the features."""

from __future__ import annotations

import torch

from miner.graph import GraphSettings, TensorFeatures, infer_graph, learn_graph
from miner.models.spec import LayerGeometry

UPPER = LayerGeometry("upper", 1, 3, 10, 10, 16.0, 60.0, 8.0)
LOWER = LayerGeometry("lower", 0, 3, 20, 20, 8.0, 30.0, 4.0)
#: where the two upper blobs sit on average (upper map units)
ANCHORS = torch.tensor([[3.0, 3.5], [6.5, 6.0]])
#: offset of the two lower firing places from twice their anchor (lower map units)
LOWER_OFFSETS = torch.tensor([[1.0, 0.0], [0.0, -1.0]])


def blob(height: int, width: int, centre: torch.Tensor, sigma: float = 0.6) -> torch.Tensor:
    """``[n, H, W]`` Gaussian bumps of height 1 at ``centre [n, 2]`` (x, y)."""
    ys = torch.arange(height, dtype=torch.float32)[None, :, None]
    xs = torch.arange(width, dtype=torch.float32)[None, None, :]
    d2 = (xs - centre[:, 0, None, None]) ** 2 + (ys - centre[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2))


def planted(n: int, seed: int = 0, noise: float = 0.02) -> tuple[TensorFeatures, torch.Tensor]:
    """Upper filters 0 and 1 fire at two anchors moved by independent per-image shifts; lower
    filter 0 fires at two places, each moving with one of them; filters 2 carry weak noise.

    Returns the features and the per-image upper blob centres ``[n, 2, 2]``.
    """
    gen = torch.Generator().manual_seed(seed)
    shifts = (torch.rand(n, 2, 2, generator=gen) * 2 - 1) * 1.5
    upper_centres = ANCHORS[None] + shifts
    upper = noise * torch.rand(n, 3, 10, 10, generator=gen)
    upper[:, 0] += blob(10, 10, upper_centres[:, 0])
    upper[:, 1] += blob(10, 10, upper_centres[:, 1])
    lower = noise * torch.rand(n, 3, 20, 20, generator=gen)
    for k in range(2):
        lower[:, 0] += blob(20, 20, 2 * upper_centres[:, k] + LOWER_OFFSETS[k])
    return TensorFeatures([lower, upper], [LOWER, UPPER], key=f"planted-{n}-{seed}"), upper_centres


def settings(**kw: object) -> GraphSettings:
    base: dict[str, object] = dict(
        density=(4 / 400, 2 / 100),
        parents=2,
        candidate_pool=6,
        iterations=6,
        chunk_size=16,
        use_flip=False,
    )
    base.update(kw)
    return GraphSettings(**base)  # type: ignore[arg-type]


def tracking_error(positions: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``[P]`` mean over images of the larger per-axis error between pattern and truth."""
    return (positions - truth[:, None, :]).abs().mean(dim=0).max(dim=1).values


def test_top_layer_patterns_follow_moving_peaks() -> None:
    features, centres = planted(40)
    graph = learn_graph(features, settings())
    upper = infer_graph(graph, features, 0, 40).layers[1]
    per_filter = graph.layers[1].per_filter
    for k in range(2):
        rows = slice(k * per_filter, (k + 1) * per_filter)
        err = tracking_error(upper.positions[:, rows], centres[:, k])
        assert float(err.min()) < 0.5, f"no pattern of filter {k} follows its peak: {err}"


def test_lower_patterns_find_both_places_with_the_right_parents() -> None:
    features, centres = planted(40)
    graph = learn_graph(features, settings())
    inferred = infer_graph(graph, features, 0, 40)
    lower, upper_graph = graph.layers[0], graph.layers[1]
    lower_pos = inferred.layers[0].positions
    upper_err = [tracking_error(inferred.layers[1].positions, centres[:, k]) for k in range(2)]
    per_filter = lower.per_filter
    found = []
    for k in range(2):
        truth = 2 * centres[:, k] + LOWER_OFFSETS[k]
        err = tracking_error(lower_pos[:, :per_filter], truth)  # filter 0 only
        best = int(err.argmin())
        assert float(err[best]) < 1.0, f"place {k} is not learned: errors {err}"
        found.append(best)
        top_parent = int(lower.parents[best, 0])
        assert top_parent >= 0
        assert int(upper_graph.filter[top_parent]) == k
        # the chosen parent is the upper pattern that follows the matching peak
        assert float(upper_err[k][top_parent]) < 0.5
        assert float(lower.parent_weight[best, 0]) >= float(lower.parent_weight[best, 1])
        assert torch.allclose(lower.parent_mean[best, 0], upper_graph.mean_position[top_parent])
    assert found[0] != found[1]


def test_pattern_moves_with_its_parents_rescaled_by_stride() -> None:
    features, _ = planted(40)
    graph = learn_graph(features, settings(parents=1))
    base_upper = features.chunk(1, 0, 1).clone()
    base_lower = features.chunk(0, 0, 1).clone()
    # move every upper map by (+1, +1) unit and every lower map by (+2, +2): same pixels
    moved_upper = torch.zeros_like(base_upper)
    moved_upper[..., 1:, 1:] = base_upper[..., :-1, :-1]
    moved_lower = torch.zeros_like(base_lower)
    moved_lower[..., 2:, 2:] = base_lower[..., :-2, :-2]
    pair = TensorFeatures(
        [torch.cat([base_lower, moved_lower]), torch.cat([base_upper, moved_upper])],
        [LOWER, UPPER],
    )
    out = infer_graph(graph, pair, 0, 2)
    lower = graph.layers[0]
    has_parents = (lower.parents >= 0).all(dim=1)
    assert bool(has_parents.any())
    # children whose parents all moved by one same vector v must move by v * 16 / 8
    parent_moved = out.layers[1].positions[1] - out.layers[1].positions[0]  # [P_up, 2]
    moves = parent_moved[lower.parents.clamp(min=0)]  # [P, M, 2]
    same = (moves - moves[:, :1]).abs().amax(dim=(1, 2)) < 1e-4
    chosen = has_parents & same & (moves[:, 0].abs().amax(dim=1) > 0.4)
    assert bool(chosen.any()), "no pattern whose parents all moved together"
    shift = out.layers[0].expected[1] - out.layers[0].expected[0]
    torch.testing.assert_close(shift[chosen], 2.0 * moves[chosen, 0], atol=1e-4, rtol=0)


def test_explained_share_is_high_for_clean_maps_and_lower_with_noise() -> None:
    clean, _ = planted(24, noise=0.0005)
    noisy, _ = planted(24, noise=0.3)
    # denser patterns than the other tests: tau is 0.1 of a pattern's whole summed prior, so
    # the patterns only outweigh the background where a few of their windows overlap
    dense = settings(density=(0.1, 0.2))
    share_clean = [lp.explained_share for lp in learn_graph(clean, dense).layers]
    share_noisy = [lp.explained_share for lp in learn_graph(noisy, dense).layers]
    assert min(share_clean) > 0.55, share_clean
    for c, n in zip(share_clean, share_noisy, strict=True):
        assert n < c - 0.2, (share_clean, share_noisy)
