"""Which layers of a CNN the miner can use, their friendly names, and the defaults per family.

Layer names are the node names of :func:`torchvision.models.feature_extraction.get_graph_node_names`
(eval mode). The listed names (:func:`conv_layer_names`) are every conv output of the trunk and
every activation (ReLU, ReLU6, ...) output; any other trunk node name (``features.13.add``) is
accepted as well.

Which node stands for a conv layer: the node whose positive part is the response that the filter
passes on. Method §2 takes ``max(x, 0)`` of the raw response itself, so where a ReLU follows the
conv directly (VGG, AlexNet, the toy net) the conv output is used (``conv4_2`` is ``features.19``
in VGG-16, identical to its ReLU output after ``max(x, 0)``); where a BatchNorm sits in between
(ResNet, MobileNetV2, VGG-BN) the conv output is not yet the response, and the activation after
the BatchNorm is used instead.

Friendly aliases: VGG and toy ``conv{stage}_{index}`` (``conv4_2``), AlexNet ``conv1`` ...
``conv5``, and any module path (``layer4``), which stands for the last listed node inside that
module (the block output, as in ``create_feature_extractor``). Conv blocks that torchvision's
tracer keeps whole (``Conv2dNormActivation``, in MobileNetV2) count as convs with their own
activation.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from torch import fx, nn

from explgraph.core.errors import ModelError
from miner.models._graph import TracedModel, node_shapes, trace_model, trunk_nodes
from miner.models.spec import LoadedModel

_MOBILENET_V2_DEFAULTS = (
    # Depthwise conv blocks (conv, BN, ReLU6: one Conv2dNormActivation node; the block outputs
    # of MobileNetV2 are linear bottlenecks with no ReLU) of the last inverted-residual block of
    # the 28x28 and of the 14x14 stage at a 224 px input, like VGG-16's conv4/conv5 (docs/method.md
    # §1). The 14x14 + 7x7 maps used before leave a part little room to move: at stride 32 a
    # pattern "moved" 0.3-0.4 map units on average (issue 10); bench/mobilenet_layers.py
    # measures the two choices on a dev seed.
    "features.6.conv.1",
    "features.13.conv.1",
)


def model_family(module: nn.Module) -> str:
    """The architecture family that decides default layers and aliases.

    One of ``vgg``, ``resnet``, ``alexnet``, ``mobilenet_v2``, ``toy_vgg`` or ``generic``.
    """
    from torchvision.models import VGG, AlexNet, MobileNetV2, ResNet

    from miner.models.toy import ToyVGG

    for cls, family in (
        (ToyVGG, "toy_vgg"),
        (VGG, "vgg"),
        (ResNet, "resnet"),
        (AlexNet, "alexnet"),
        (MobileNetV2, "mobilenet_v2"),
    ):
        if isinstance(module, cls):
            return family
    return "generic"


def _response_node(traced: TracedModel, conv: fx.Node) -> fx.Node:
    """The node that carries a conv's rectified response (see the module docstring)."""
    users = traced.users(conv)
    if len(users) == 1 and traced.is_norm(users[0]):
        after_norm = traced.users(users[0])
        if len(after_norm) == 1 and traced.is_activation(after_norm[0]):
            return after_norm[0]
    return conv


def _listed_nodes(traced: TracedModel) -> list[fx.Node]:
    trunk = trunk_nodes(traced)
    return [
        node
        for node in traced.nodes
        if node in trunk and (traced.is_conv(node) or traced.is_activation(node))
    ]


def conv_layer_names(module: nn.Module) -> list[str]:
    """Every conv output and activation output of the conv trunk, bottom to top.

    Names as :func:`~torchvision.models.feature_extraction.get_graph_node_names` gives them;
    ReLUs of the classifier head are left out. The module's training mode is left as it was.

    Example:
        >>> conv_layer_names(torchvision.models.vgg16())[:3]
        ['features.0', 'features.1', 'features.2']

    Module names ending in ``_<digits>`` are renamed by that tracer (``conv3_1`` becomes
    ``conv3``, its second use ``conv3_1``); name your modules without such a suffix.
    """
    traced = trace_model(module)
    return [traced.names[node] for node in _listed_nodes(traced)]


def _sequential_conv_aliases(traced: TracedModel, features: nn.Module) -> dict[str, str]:
    """VGG-style ``conv{stage}_{k}`` names over a Sequential, stages separated by pooling."""
    aliases: dict[str, str] = {}
    stage, k = 1, 0
    for index, child in enumerate(features.children()):
        if isinstance(child, nn.MaxPool2d | nn.AvgPool2d):
            stage, k = stage + 1, 0
        elif isinstance(child, nn.Conv2d):
            k += 1
            node = traced.by_name.get(f"features.{index}")
            if node is not None:
                aliases[f"conv{stage}_{k}"] = traced.names[_response_node(traced, node)]
    return aliases


def _aliases(traced: TracedModel, family: str) -> dict[str, str]:
    root = traced.graph_module
    features = getattr(root, "features", None)
    if family == "vgg" and isinstance(features, nn.Module):
        return _sequential_conv_aliases(traced, features)
    if family == "alexnet" and hasattr(root, "features"):
        convs = [node for node in traced.nodes if traced.is_conv(node)]
        return {
            f"conv{i}": traced.names[_response_node(traced, node)]
            for i, node in enumerate(convs, start=1)
        }
    if family == "toy_vgg":
        # block3_conv1 -> conv3_1, as in VGG (see miner.models.toy for why not the module name).
        aliases = {}
        for node in traced.nodes:
            match = re.fullmatch(r"block(\d+)_conv(\d+)", traced.names[node])
            if match and traced.is_conv(node):
                alias = f"conv{match.group(1)}_{match.group(2)}"
                aliases[alias] = traced.names[_response_node(traced, node)]
        return aliases
    return {}


def layer_aliases(module: nn.Module) -> dict[str, str]:
    """Friendly layer names of this architecture, mapped to node names (``conv4_2`` -> ...)."""
    return _aliases(trace_model(module), model_family(module))


class _Resolver:
    """Name resolution over one trace of the model."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.family = model_family(module)
        self.traced = trace_model(module)
        self.listed = _listed_nodes(self.traced)
        self.trunk = trunk_nodes(self.traced)
        self.aliases = _aliases(self.traced, self.family)
        self.order = {node: i for i, node in enumerate(self.traced.nodes)}

    def resolve(self, name: str) -> fx.Node:
        traced = self.traced
        if name in self.aliases:
            return traced.by_name[self.aliases[name]]
        node = traced.by_name.get(name)
        if node is not None and node in self.trunk:
            return node
        inside = [n for n in self.listed if traced.names[n].startswith(name + ".")]
        if inside:
            return inside[-1]
        raise ModelError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        listed = [self.traced.names[n] for n in self.listed]
        friendly = list(self.aliases)
        candidates = friendly + listed
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        shown = _truncate(friendly) + "; " if friendly else ""
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return (
            f"unknown layer '{name}' in {type(self.module).__name__}.{hint} Valid names: "
            f"{shown}{_truncate(listed)} (get_graph_node_names node names; see "
            "miner.models.conv_layer_names for the full list)"
        )

    def defaults(self, input_size: int) -> list[str]:
        family, traced = self.family, self.traced
        if family in ("vgg", "toy_vgg"):
            stages: dict[int, list[str]] = {}
            for alias in self.aliases:
                match = re.fullmatch(r"conv(\d+)_(\d+)", alias)
                if match:
                    stages.setdefault(int(match.group(1)), []).append(alias)
            if len(stages) >= 2:
                last_two = sorted(stages)[-2:]
                return self.sort([a for s in last_two for a in stages[s][-2:]])
        if family == "alexnet" and len(self.aliases) >= 5:
            return self.sort(["conv3", "conv4", "conv5"])
        if family == "resnet" and "layer3" in dict(self.module.named_children()):
            return self.sort(["layer3", "layer4"])
        if family == "mobilenet_v2" and all(n in traced.by_name for n in _MOBILENET_V2_DEFAULTS):
            return list(_MOBILENET_V2_DEFAULTS)
        return self._generic_defaults(input_size)

    def _rectified_responses(self) -> list[fx.Node]:
        """Conv responses that pass a ReLU-like activation, and activations after joins."""
        traced = self.traced
        found: list[fx.Node] = []
        for node in self.listed:
            if traced.is_conv(node):
                candidate = _response_node(traced, node)
                users = traced.users(candidate)
                rectified = (
                    traced.is_activation(candidate)
                    or traced.is_rectified_conv(candidate)
                    or (len(users) == 1 and traced.is_activation(users[0]))
                )
                if not rectified:
                    continue  # a linear projection (bottleneck output, shortcut)
            else:
                inputs = node.all_input_nodes
                if len(inputs) == 1 and traced.is_conv(inputs[0]):
                    continue  # stands for the conv before it, listed as the conv
                candidate = node
            if candidate not in found:
                found.append(candidate)
        return found

    def _generic_defaults(self, input_size: int) -> list[str]:
        # Like VGG's: the last two rectified responses of each of the last two map resolutions.
        shapes = node_shapes(self.traced, input_size)
        responses = self._rectified_responses()
        runs: list[list[fx.Node]] = []
        previous: tuple[int, ...] | None = None
        for node in responses:
            spatial = shapes.get(node, ())[2:]
            if len(spatial) != 2 or spatial == (1, 1):
                continue
            if spatial != previous:
                runs.append([])
                previous = spatial
            runs[-1].append(node)
        if not runs:
            raise ModelError(
                f"{type(self.module).__name__} has no conv layers with spatial maps at "
                f"{input_size}x{input_size}; name the layers to mine explicitly"
            )
        chosen = [node for run in runs[-2:] for node in run[-2:]]
        return [self.traced.names[node] for node in chosen]

    def sort(self, names: Sequence[str]) -> list[str]:
        nodes: list[fx.Node] = []
        for name in names:
            node = self.resolve(name)
            if node not in nodes:
                nodes.append(node)
        nodes.sort(key=self.order.__getitem__)
        return [self.traced.names[node] for node in nodes]


def _truncate(names: Sequence[str], keep: int = 8) -> str:
    if len(names) <= 2 * keep:
        return ", ".join(names)
    skipped = len(names) - 2 * keep
    return f"{', '.join(names[:keep])}, ... ({skipped} more) ..., {', '.join(names[-keep:])}"


def default_layers(module: nn.Module, input_size: int = 224) -> list[str]:
    """The family's default graph layers as node names, bottom to top.

    VGG: the last two convs of the last two stages (VGG-16: conv4_2, conv4_3, conv5_2, conv5_3);
    the toy net likewise (block3_conv1, block3_conv2, block4_conv1, block4_conv2); ResNets: the
    last blocks of the last two stages; AlexNet: conv3-conv5; MobileNetV2: the depthwise conv
    blocks of the last two inverted-residual blocks of the 14x14 and 7x7 stages; anything else:
    the last two rectified conv responses of each of the last two map resolutions at
    ``input_size``.
    """
    return _Resolver(module).defaults(input_size)


def resolve_layers(loaded: LoadedModel, names: Sequence[str] | None = None) -> list[str]:
    """Turn the user's layer names (node names, aliases, module paths) into node names.

    ``None`` gives the model's default layers. The result is ordered bottom to top with
    duplicates removed.

    Raises:
        ModelError: a name is not a layer of the model; the message lists the valid names.
    """
    resolver = _Resolver(loaded.module)
    if names is None:
        if loaded.default_layers:
            return resolver.sort(loaded.default_layers)
        return resolver.defaults(loaded.input_size)
    if not names:
        raise ModelError("no layers named; give at least one layer, or none for the defaults")
    return resolver.sort(names)


__all__ = [
    "conv_layer_names",
    "default_layers",
    "layer_aliases",
    "model_family",
    "resolve_layers",
]
