"""The explainer network on planted feature maps: what its gate and decoder learn.

A map made of one part (a blob of one channel profile at a random place) fits the masked
interpretable track, so the gate gives it ``p`` near 1; dense noise does not, so the gate hands
it to the ordinary track (``p`` below one half); both are reconstructed.
"""

from __future__ import annotations

import pytest
import torch

from miner.explainer import Explainer, ExplainerConfig, ExplainerSpec, explainer_loss
from miner.explainer.network import relative_error
from miner.explainer.training import train_explainer

C, H, W = 8, 8, 8


def part_maps(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` maps of one part: a fixed channel profile times a diamond blob at a random place."""
    profile = torch.linspace(1.0, 0.2, C)
    ys = torch.randint(1, H - 1, (n,), generator=generator)
    xs = torch.randint(1, W - 1, (n,), generator=generator)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    distance = (yy[None] - ys[:, None, None]).abs() + (xx[None] - xs[:, None, None]).abs()
    blob = (1 - distance / 2).clamp_min(0)
    return profile[None, :, None, None] * blob[:, None]


def noise_maps(n: int, rms: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` rectified Gaussian noise maps scaled to root mean square ``rms``."""
    noise = torch.randn(n, C, H, W, generator=generator).relu()
    return noise * rms / noise.pow(2).mean().sqrt()


def small_spec(**changes: float) -> ExplainerSpec:
    # noise 0.3: the training noise on the mix makes a small ordinary share costly (see
    # docs/explainer.md), so p separates the two kinds of map within a few seconds of training
    options = {"filters": 16, "hidden": 32, "gate_hidden": 8, "noise": 0.3, **changes}
    return ExplainerSpec(
        layer="planted", module="planted", channels=C, height=H, width=W, **options
    )


@pytest.fixture(scope="module")
def planted() -> tuple[torch.Tensor, torch.Tensor, Explainer]:
    generator = torch.Generator().manual_seed(0)
    parts = part_maps(128, generator)
    noise = noise_maps(128, float(parts.pow(2).mean().sqrt()), generator)
    config = ExplainerConfig(epochs=80, batch_size=32, seed=0, lr=1e-2)
    trained = train_explainer(torch.cat([parts, noise]), small_spec(), config)
    return parts, noise, trained.explainer()


def test_a_map_of_one_part_is_carried_by_the_interpretable_track(planted) -> None:
    parts, _, explainer = planted
    with torch.no_grad():
        output = explainer(parts)
    assert float(output.p.min()) > 0.9
    assert float(relative_error(output.reconstruction, parts)) < 0.05


def test_noise_is_carried_by_the_ordinary_track(planted) -> None:
    parts, noise, explainer = planted
    with torch.no_grad():
        on_noise, on_parts = explainer(noise), explainer(parts)
    assert float(on_noise.p.max()) < 0.5
    assert float(on_noise.p.mean()) < float(on_parts.p.mean()) - 0.4
    assert float(relative_error(on_noise.reconstruction, noise)) < 0.1


def test_forward_shapes_and_p_in_the_unit_interval() -> None:
    torch.manual_seed(0)
    explainer = Explainer(small_spec()).eval()
    maps = torch.rand(5, C, H, W)
    output = explainer(maps)
    assert output.reconstruction.shape == maps.shape
    assert output.interpretable.shape == output.ordinary.shape == (5, 16, H, W)
    assert output.p.shape == (5,)
    assert bool(((output.p > 0) & (output.p < 1)).all())
    assert torch.allclose(output.log_p.exp(), output.p, atol=1e-6)


def test_the_control_has_no_filter_loss_in_its_total() -> None:
    torch.manual_seed(0)
    maps = torch.rand(6, C, H, W)
    for weight, has_filter_term in ((0.0, False), (0.05, True)):
        torch.manual_seed(1)
        explainer = Explainer(small_spec(filter_loss_weight=weight, noise=0.0)).train()
        loss = explainer_loss(explainer, explainer(maps), maps)
        rest = loss.reconstruction + loss.p_term
        assert (abs(float(loss.total.detach()) - rest) > 1e-6) == has_filter_term
        assert loss.filter == loss.filter  # recorded (not NaN) for the control too
    assert small_spec(filter_loss_weight=0.0).control and not small_spec().control


def test_filter_overlap_is_one_for_a_collapse_and_zero_for_disjoint_filters() -> None:
    from miner.explainer.network import filter_overlap

    generator = torch.Generator().manual_seed(1)
    same = torch.rand(4, 1, 6, 6, generator=generator).expand(4, 5, 6, 6)
    assert float(filter_overlap(same)) == pytest.approx(1.0, abs=1e-5)
    disjoint = torch.zeros(4, 5, 6, 6)
    for k in range(5):  # each filter fires at its own column only
        disjoint[:, k, :, k] = torch.rand(4, 6, generator=generator) + 0.1
    assert float(filter_overlap(disjoint)) == pytest.approx(0.0, abs=1e-7)
    half = disjoint.clone()
    half[:, 1] = half[:, 0]  # two of five filters alike: 2 of the 20 ordered pairs
    assert float(filter_overlap(half)) == pytest.approx(2 / 20, abs=1e-5)


def test_the_diversity_weight_adds_the_overlap_to_the_loss() -> None:
    from miner.explainer.network import filter_overlap

    maps = part_maps(16, torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = Explainer(small_spec())
    torch.manual_seed(0)
    diverse = Explainer(small_spec(diversity_weight=2.0))
    plain.train(), diverse.train()
    torch.manual_seed(3)
    out_plain = plain(maps)
    loss_plain = explainer_loss(plain, out_plain, maps)
    torch.manual_seed(3)
    out_diverse = diverse(maps)
    loss_diverse = explainer_loss(diverse, out_diverse, maps)
    overlap = float(filter_overlap(out_diverse.interpretable).detach())
    assert overlap > 0
    added = float((loss_diverse.total - loss_plain.total).detach())
    assert added == pytest.approx(2.0 * overlap, rel=1e-4)
