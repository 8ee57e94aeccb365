"""The performer's side: the explained layer, its maps, and the swap that always undoes itself."""

from __future__ import annotations

import pytest
import torch

from explgraph.core.errors import ModelError
from miner.explainer import layer_maps, performer_layer, swapped_layer
from miner.explainer.performer import normalise
from miner.models import load_model
from miner.models.toy import bundled_checkpoint


@pytest.fixture(scope="module")
def toy():
    return load_model(str(bundled_checkpoint()))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (6, 3, 96, 96), generator=torch.Generator().manual_seed(0)).to(
        torch.uint8
    )


def test_identity_swap_keeps_the_logits_and_zero_changes_them(toy, images) -> None:
    layer = performer_layer(toy, "block3_conv2")
    maps, logits = layer_maps(toy, layer, images)
    assert maps.shape == (6, layer.geometry.channels, layer.geometry.height, layer.geometry.width)
    assert bool((maps >= 0).all())
    inputs = normalise(images, toy)
    with swapped_layer(toy.module, layer, lambda rectified: rectified) as module:
        same = module(inputs)
    with swapped_layer(toy.module, layer, torch.zeros_like) as module:
        zeroed = module(inputs)
    assert torch.allclose(same, logits, atol=1e-5)
    assert not torch.allclose(zeroed, logits, atol=1e-3)


def test_the_swap_is_undone_when_the_block_raises(toy, images) -> None:
    layer = performer_layer(toy, "block4_conv2")
    before = layer_maps(toy, layer, images)[1]
    toy.module.train()
    with (
        pytest.raises(RuntimeError, match="stop"),
        swapped_layer(toy.module, layer, torch.zeros_like),
    ):
        raise RuntimeError("stop")
    assert toy.module.training
    toy.module.eval()
    assert not toy.module.get_submodule(layer.module)._forward_hooks
    assert torch.allclose(layer_maps(toy, layer, images)[1], before)


def test_an_unknown_layer_names_what_exists(toy) -> None:
    with pytest.raises(ModelError, match="block4_conv2"):
        performer_layer(toy, "no_such_layer")
