"""The interpretable layer (Zhang et al. CVPR 2018): templates, mask, loss, training, loading."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from explgraph.core.errors import InputError, ModelError
from miner.models.interpretable import (
    InterpretableSpec,
    TemplateMask,
    filter_loss,
    filter_loss_of,
    make_interpretable,
    part_mask,
    part_templates,
    template_log_priors,
    template_masks,
)
from miner.models.toy import ToyVGG

SIZE = 12


def _bump(row: int, col: int, height: float = 20.0, size: int = SIZE) -> torch.Tensor:
    """A sharp peak of ``height`` at (row, col), falling off over a unit or two."""
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    cols = torch.arange(size, dtype=torch.float32)[None, :]
    return height * torch.exp(-((rows - row) ** 2 + (cols - col) ** 2) / 2.0)


def _spec(tau: float | None = None) -> InterpretableSpec:
    return InterpretableSpec("layer", "act", SIZE, SIZE, beta=4.0, tau=tau)


def _loss(maps: torch.Tensor, spec: InterpretableSpec) -> torch.Tensor:
    templates = part_templates(spec.height, spec.width, spec.beta, spec.resolved_tau)
    priors = template_log_priors(spec.height, spec.width, spec.resolved_alpha)
    return filter_loss(maps, templates, priors)


@pytest.fixture
def peaks() -> tuple[torch.Tensor, torch.Tensor]:
    """(single-peak maps, two-peak maps of the same total mass) of one filter over 16 images."""
    generator = torch.Generator().manual_seed(0)
    where = torch.randint(1, SIZE - 1, (16, 2, 2), generator=generator)
    single = torch.stack([_bump(int(w[0, 0]), int(w[0, 1])) for w in where])
    # Half the mass moves to a second peak far from the first (mirrored): two parts in one map.
    # (MI grows with the activation scale, so the comparison keeps the mass equal.)
    double = torch.stack(
        [
            0.5 * _bump(int(w[0, 0]), int(w[0, 1]))
            + 0.5 * _bump(SIZE - 1 - int(w[0, 0]), SIZE - 1 - int(w[0, 1]))
            for w in where
        ]
    )
    return single[:, None], double[:, None]


def test_templates_follow_the_paper() -> None:
    templates = part_templates(SIZE, SIZE, beta=4.0, tau=0.5 / SIZE**2)
    assert templates.shape == (SIZE * SIZE + 1, SIZE, SIZE)
    tau = 0.5 / SIZE**2
    centre = 5 * SIZE + 7  # template of position (row 5, col 7)
    assert templates[centre, 5, 7] == pytest.approx(tau)
    # One unit away: 1 - 4 * 1/12; far corner: clamped at -tau.
    assert templates[centre, 5, 8] == pytest.approx(tau * (1 - 4 / SIZE))
    assert templates[centre, 0, 0] == pytest.approx(-tau)
    assert torch.all(templates[-1] == -tau)  # the negative template
    priors = template_log_priors(SIZE, SIZE, alpha=SIZE**2 / (1 + SIZE**2)).exp()
    assert float(priors.sum()) == pytest.approx(1.0)
    assert priors[-1] == pytest.approx(1 / (1 + SIZE**2))


def test_single_peak_map_has_lower_filter_loss_than_two_peak_map(
    peaks: tuple[torch.Tensor, torch.Tensor],
) -> None:
    single, double = peaks
    for tau in (None, 0.05):  # the paper's scale and a larger one
        spec = _spec(tau)
        assert float(_loss(single, spec)) < float(_loss(double, spec))


def test_loss_is_minus_mutual_information_within_its_bounds(
    peaks: tuple[torch.Tensor, torch.Tensor],
) -> None:
    spec = _spec(0.05)
    priors = template_log_priors(SIZE, SIZE, spec.resolved_alpha)
    entropy = float(-(priors.exp() * priors).sum())
    for maps in peaks:
        value = float(_loss(maps, spec))
        assert -entropy - 1e-5 <= value <= 1e-6
    # Identical maps carry no information about the template.
    flat = torch.ones(8, 1, SIZE, SIZE)
    assert float(_loss(flat, spec)) == pytest.approx(0.0, abs=1e-6)


def test_loss_is_batched_over_filters(peaks: tuple[torch.Tensor, torch.Tensor]) -> None:
    single, double = peaks
    maps = torch.cat([single, double, single * 0.1], dim=1)  # three filters
    spec = _spec(0.05)
    together = _loss(maps, spec)
    apart = torch.cat([_loss(maps[:, c : c + 1], spec) for c in range(3)])
    torch.testing.assert_close(together, apart)


def test_mask_follows_the_peak() -> None:
    maps = torch.stack([_bump(2, 3), _bump(9, 8)])[:, None]
    mask = part_mask(maps, beta=4.0)
    for image, (row, col) in enumerate([(2, 3), (9, 8)]):
        assert mask[image, 0, row, col] == pytest.approx(1.0)
        assert int(mask[image, 0].flatten().argmax()) == row * SIZE + col
        assert mask[image, 0, row, (col + 1) % SIZE] < 1.0
    assert mask[0, 0, 11, 11] == pytest.approx(-1.0)  # far from the peak: clamped
    masked = TemplateMask(_spec()).eval()(maps)
    assert torch.all(masked >= 0)
    assert masked[0, 0, 2, 3] == pytest.approx(float(maps[0, 0, 2, 3]))
    assert masked[0, 0, 9, 8] == 0  # the other image's peak position is masked out here
    assert masked[1, 0, 9, 8] == pytest.approx(float(maps[1, 0, 9, 8]))


def test_gradients_flow_into_the_maps_and_the_conv(
    peaks: tuple[torch.Tensor, torch.Tensor],
) -> None:
    maps = peaks[1].clone().requires_grad_(True)
    _loss(maps, _spec(0.05)).sum().backward()
    assert maps.grad is not None and torch.isfinite(maps.grad).all()
    assert float(maps.grad.abs().sum()) > 0

    torch.manual_seed(0)
    model = ToyVGG(4, batch_norm=True)
    spec = make_interpretable(model, "block4_conv2", 96, tau=0.05)
    assert spec.activation == "block4_relu2" and (spec.height, spec.width) == (12, 12)
    model.train()
    model(torch.randn(4, 3, 96, 96))
    loss = filter_loss_of(model)
    assert loss is not None
    loss.backward()
    grad = model.block4_conv2.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    # In eval mode no loss is recorded (the mask still applies).
    model.eval()
    template_masks(model)[0].loss = None
    with torch.no_grad():
        model(torch.randn(2, 3, 96, 96))
    assert filter_loss_of(model) is None


def test_alias_resolves_and_bad_layers_are_refused() -> None:
    spec = make_interpretable(ToyVGG(4), "conv4_2", 96)
    assert spec.layer == "block4_conv2"
    with pytest.raises(ModelError, match="not a layer"):
        make_interpretable(ToyVGG(4), "block9_conv9", 96)
    with pytest.raises(ModelError, match="incomplete"):
        InterpretableSpec.from_dict({"layer": "x"})


def test_training_records_the_layer_and_loading_rebuilds_the_mask(tmp_path: Path) -> None:
    from miner.models import load_model
    from miner.models.checkpoint import read_checkpoint
    from miner.models.training import TrainConfig, train_toy_model

    config = TrainConfig(
        n=24,
        image_size=64,
        input_size=48,
        epochs=1,
        batch_size=12,
        widths=(4, 4, 4, 8),
        threads=1,
        interpretable="block4_conv2",
        tau=0.05,
    )
    result = train_toy_model(tmp_path / "icnn.pt", config)
    assert result.interpretable is not None and result.interpretable.layer == "block4_conv2"
    assert all(math.isfinite(row["filter_loss"]) for row in result.history)
    stored = read_checkpoint(result.checkpoint)
    assert stored.interpretable is not None and stored.interpretable["tau"] == 0.05
    # The mask has no weights: the state dict is the plain architecture's.
    assert set(stored.state_dict) == set(ToyVGG(4, (4, 4, 4, 8)).state_dict())
    loaded = load_model(str(result.checkpoint))
    masks = template_masks(loaded.module)
    assert len(masks) == 1 and masks[0].spec == result.interpretable
    assert loaded.interpretable == stored.interpretable


def test_cli_layer_needs_interpretable(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    result = run_cli("train", "--layer", "block4_conv2", "--out", tmp_path / "x.pt", expect=1)
    # The console entry point turns this ExplGraphError into one line and exit code 1.
    assert "add --interpretable" in result.error_line
    assert not (tmp_path / "x.pt").exists()


def test_warm_start_continues_from_the_checkpoint(tmp_path: Path) -> None:
    from miner.models import load_model
    from miner.models.checkpoint import read_checkpoint
    from miner.models.training import TrainConfig, train_toy_model, warm_start_model

    small = {"n": 24, "image_size": 64, "input_size": 48, "batch_size": 12, "threads": 1}
    config = TrainConfig(epochs=1, widths=(4, 4, 4, 8), **small)  # type: ignore[arg-type]
    base = train_toy_model(tmp_path / "base.pt", config)
    # The warm-started net computes exactly what the saved (BatchNorm-folded) net computes.
    start = warm_start_model(base.checkpoint, base.classes).eval()
    images = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        expected = load_model(str(base.checkpoint)).module(images)
        assert torch.allclose(start(images), expected, atol=1e-5)
    with pytest.raises(InputError, match="trained on classes"):
        warm_start_model(base.checkpoint, ["a", "b", "c", "d"])
    # Interpretable fine-tuning from it: same widths, the mask added, weights moved from the start.
    tuned = TrainConfig(
        epochs=1,
        warm_start=str(base.checkpoint),
        interpretable="block4_conv2",
        **small,  # type: ignore[arg-type]
    )
    result = train_toy_model(tmp_path / "tuned.pt", tuned)
    stored = read_checkpoint(result.checkpoint)
    assert stored.meta["config"]["warm_start"] == str(base.checkpoint)
    assert stored.arch_kwargs["widths"] == [4, 4, 4, 8]
    assert math.isfinite(result.history[-1]["filter_loss"])
    moved = (
        stored.state_dict["block4_conv2.weight"]
        - read_checkpoint(base.checkpoint).state_dict["block4_conv2.weight"]
    )
    assert 0 < float(moved.abs().max()) < 1.0
