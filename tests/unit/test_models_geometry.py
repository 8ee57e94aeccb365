"""Layer geometry: VGG-16's published values, a hand-computed tiny net, joins and the probe."""

from __future__ import annotations

import pytest
import torch
import torchvision

from miner.models import layer_geometry, resolve_layers
from tests.helpers.models import (
    TINY_GEOMETRY,
    ResidualNet,
    TinyNet,
    UpsampleNet,
    loaded_model,
)


@pytest.fixture(scope="module")
def vgg16() -> object:
    torch.manual_seed(0)
    return loaded_model(torchvision.models.vgg16(weights=None), input_size=224, name="vgg16")


def test_vgg16_default_layers_have_the_known_geometry(vgg16: object) -> None:
    layers = resolve_layers(vgg16)  # type: ignore[arg-type]
    geometry = layer_geometry(vgg16, layers)  # type: ignore[arg-type]
    got = [(g.name, g.height, g.width, g.stride, g.channels) for g in geometry]
    assert got == [
        ("features.19", 28, 28, 8.0, 512),
        ("features.21", 28, 28, 8.0, 512),
        ("features.26", 14, 14, 16.0, 512),
        ("features.28", 14, 14, 16.0, 512),
    ]
    # Receptive fields: conv4_2 76, conv4_3 92, conv5_2 164, conv5_3 196 px; unit 0 of a
    # stride-s map is centred at s/2 (it sees pixels -p.. with symmetric padding).
    assert [g.rf_size for g in geometry] == [76.0, 92.0, 164.0, 196.0]
    assert [g.rf_offset for g in geometry] == [4.0, 4.0, 8.0, 8.0]
    assert [g.index for g in geometry] == [0, 1, 2, 3]


def test_vgg16_geometry_by_alias_keeps_the_given_order(vgg16: object) -> None:
    geometry = layer_geometry(vgg16, ["conv5_3", "conv1_1", "features.4"])  # type: ignore[arg-type]
    assert [(g.name, g.stride, g.rf_size, g.rf_offset) for g in geometry] == [
        ("features.28", 16.0, 196.0, 8.0),
        ("features.0", 1.0, 3.0, 0.5),
        ("features.4", 2.0, 6.0, 1.0),  # pool1: two conv3x3 then a 2x2 pool
    ]


def test_unit_centres_map_to_pixels(vgg16: object) -> None:
    (conv5_3,) = layer_geometry(vgg16, ["conv5_3"])  # type: ignore[arg-type]
    units = torch.tensor([[0.0, 0.0], [13.0, 6.0]])
    pixels = conv5_3.to_pixels(units)
    assert torch.equal(pixels, torch.tensor([[8.0, 8.0], [216.0, 104.0]]))
    assert torch.equal(conv5_3.to_units(pixels), units)


def test_tiny_net_matches_hand_computation() -> None:
    model = loaded_model(TinyNet())
    geometry = layer_geometry(model, list(TINY_GEOMETRY))
    for g in geometry:
        side, stride, rf_size, rf_offset = TINY_GEOMETRY[g.name]
        assert (g.height, g.width, g.stride, g.rf_size, g.rf_offset) == (
            side,
            side,
            stride,
            rf_size,
            rf_offset,
        ), g.name


def test_receptive_field_matches_gradient_support() -> None:
    # Independent check: the input pixels that influence unit (3, 3) of conv_c are exactly
    # its receptive field clipped to the image.
    torch.manual_seed(1)
    net = TinyNet().eval()
    (g,) = layer_geometry(loaded_model(net), ["conv_c"])
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    x = net.conv_b(net.pool(net.relu_a(net.conv_a(image))))
    net.conv_c(x)[0, :, 3, 3].sum().backward()
    assert image.grad is not None
    cols = torch.nonzero(image.grad[0].abs().sum(dim=(0, 1)) > 0).flatten()
    centre = g.rf_offset + g.stride * 3
    assert float(cols.min()) == centre - g.rf_size / 2
    assert float(cols.max()) + 1 == centre + g.rf_size / 2


def test_residual_join_takes_the_union_of_both_branches() -> None:
    model = loaded_model(ResidualNet())
    (g,) = layer_geometry(model, ["out_relu"])
    # stem: pixels -1..1; body 3x3 s2 p1: -2..2; shortcut 4x4 s2 p1: -2..3. The add sees both.
    assert (g.height, g.stride, g.rf_size, g.rf_offset) == (16, 2.0, 6.0, 1.0)
    (body,) = layer_geometry(model, ["body"])
    assert (body.rf_size, body.rf_offset) == (5.0, 0.5)


def test_upsampled_layer_falls_back_to_probing() -> None:
    model = loaded_model(UpsampleNet())
    (g,) = layer_geometry(model, ["relu_1"])
    assert (g.height, g.width) == (32, 32)
    # Nearest 2x upsampling of a stride-2 map: units are 1 px apart on average, and each sees
    # the 8-px field of a conv_b unit (3x3 conv, 2x2 pool, 3x3 conv).
    assert (g.stride, g.rf_size) == (1.0, 8.0)


def test_geometry_rejects_a_non_map_layer() -> None:
    from explgraph.core.errors import ModelError

    with pytest.raises(ModelError, match="unknown layer 'head'"):
        layer_geometry(loaded_model(TinyNet()), ["head"])


def test_geometry_restores_training_mode() -> None:
    net = TinyNet()
    model = loaded_model(net)
    net.train()
    layer_geometry(model, ["conv_b"])
    assert net.training and net.conv_b.training
