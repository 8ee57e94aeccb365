"""Layer names, aliases, defaults per family, and unknown-name errors."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import get_graph_node_names

from explgraph.core.errors import ModelError
from miner.models import (
    ToyVGG,
    conv_layer_names,
    default_layers,
    layer_aliases,
    model_family,
    resolve_layers,
)
from tests.helpers.models import ResidualNet, TinyNet, loaded_model


def test_conv_layer_names_are_graph_node_names_of_convs_and_activations() -> None:
    net = TinyNet()
    names = conv_layer_names(net)
    assert names == ["conv_a", "relu_a", "conv_b", "relu_b", "conv_c", "relu_c"]
    _, eval_nodes = get_graph_node_names(net)
    assert set(names) <= set(eval_nodes)
    assert "head_relu" in eval_nodes  # the classifier's ReLU is a node, but not a conv layer


def test_vgg16_aliases_and_defaults() -> None:
    vgg = torchvision.models.vgg16(weights=None)
    aliases = layer_aliases(vgg)
    assert aliases["conv4_2"] == "features.19"
    assert aliases["conv5_3"] == "features.28"
    assert len(aliases) == 13
    assert default_layers(vgg) == ["features.19", "features.21", "features.26", "features.28"]


def test_vgg_with_batch_norm_uses_the_activation_after_the_norm() -> None:
    vgg_bn = torchvision.models.vgg11_bn(weights=None)
    aliases = layer_aliases(vgg_bn)
    # features.0 conv, .1 BN, .2 ReLU: the response is the ReLU output.
    assert aliases["conv1_1"] == "features.2"
    assert model_family(vgg_bn) == "vgg"


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (torchvision.models.resnet18, ["layer3.1.relu_1", "layer4.1.relu_1"]),
        (torchvision.models.alexnet, ["features.6", "features.8", "features.10"]),
        (
            torchvision.models.mobilenet_v2,
            ["features.6.conv.1", "features.13.conv.1"],
        ),
    ],
)
def test_family_defaults(builder: object, expected: list[str]) -> None:
    net = builder(weights=None)  # type: ignore[operator]
    assert default_layers(net) == expected


def test_toy_defaults_are_its_last_two_stages() -> None:
    expected = ["block3_conv1", "block3_conv2", "block4_conv1", "block4_conv2"]
    assert default_layers(ToyVGG(4), 96) == expected
    assert layer_aliases(ToyVGG(4))["conv3_2"] == "block3_conv2"
    # While it still has BatchNorm (training), the responses are the ReLU outputs.
    assert default_layers(ToyVGG(4, batch_norm=True), 96) == [
        "block3_relu1",
        "block3_relu2",
        "block4_relu1",
        "block4_relu2",
    ]


def test_generic_defaults_take_the_last_two_resolutions() -> None:
    # TinyNet maps: conv_a 32, conv_b 14, conv_c 7 -> the last two resolutions, up to two each.
    assert default_layers(TinyNet(), 32) == ["conv_b", "conv_c"]
    # Linear projections (the block's body conv before BN-add, the shortcut) are not responses;
    # the ReLU after the join is.
    assert default_layers(ResidualNet(), 32) == ["stem_relu", "out_relu"]


def test_resolve_orders_bottom_to_top_and_drops_duplicates() -> None:
    model = loaded_model(TinyNet())
    assert resolve_layers(model, ["conv_c", "conv_a", "conv_c"]) == ["conv_a", "conv_c"]
    assert resolve_layers(model) == ["conv_b", "conv_c"]


def test_resolve_accepts_aliases_module_paths_and_any_trunk_node() -> None:
    resnet = loaded_model(torchvision.models.resnet18(weights=None), 224)
    assert resolve_layers(resnet, ["layer4", "layer2.0"]) == ["layer2.0.relu_1", "layer4.1.relu_1"]
    assert resolve_layers(resnet, ["layer1.0.add"]) == ["layer1.0.add"]


def test_unknown_layer_lists_valid_names_and_close_matches() -> None:
    vgg = loaded_model(torchvision.models.vgg16(weights=None), 224)
    with pytest.raises(ModelError) as caught:
        resolve_layers(vgg, ["conv4_4"])
    message = str(caught.value)
    assert "unknown layer 'conv4_4'" in message
    assert "Did you mean" in message and "conv4_3" in message
    assert "features.0" in message and "more" in message  # truncated list, not all 60 names
    assert "\n" not in message


def test_classifier_nodes_are_not_layers() -> None:
    with pytest.raises(ModelError, match="unknown layer 'head_relu'"):
        resolve_layers(loaded_model(TinyNet()), ["head_relu"])


def test_empty_layer_list_is_an_error() -> None:
    with pytest.raises(ModelError, match="no layers named"):
        resolve_layers(loaded_model(TinyNet()), [])


def test_naming_restores_training_mode() -> None:
    net = TinyNet().train()
    conv_layer_names(net)
    default_layers(net, 32)
    assert all(module.training for module in net.modules())
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
