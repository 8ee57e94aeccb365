"""Trace a model once with torchvision's node naming, and classify the nodes the miner cares about.

Node names are exactly those of :func:`torchvision.models.feature_extraction.get_graph_node_names`
(eval mode), because the same tracer (``NodePathTracer``) with the same defaults produces them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torchvision
from torch import fx, nn
from torch.nn import functional as F
from torchvision.models.feature_extraction import NodePathTracer
from torchvision.ops.misc import ConvNormActivation

from explgraph.core.errors import ModelError

ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.PReLU,
)
ACTIVATION_FUNCTIONS: frozenset[object] = frozenset(
    {
        F.relu,
        F.relu6,
        F.leaky_relu,
        F.elu,
        F.selu,
        F.gelu,
        F.silu,
        F.mish,
        F.hardswish,
        torch.relu,
        torch.relu_,
    }
)
ACTIVATION_METHODS = frozenset({"relu", "relu_"})
NORM_MODULES: tuple[type[nn.Module], ...] = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)
# Operations after which a tensor is no longer a spatial feature map of the conv trunk.
_BARRIER_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Flatten,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_BARRIER_FUNCTIONS: frozenset[object] = frozenset(
    {
        torch.flatten,
        F.linear,
        F.adaptive_avg_pool2d,
        F.adaptive_max_pool2d,
        torch.mean,
        torch.sum,
    }
)
_BARRIER_METHODS = frozenset({"flatten", "view", "reshape", "mean", "sum", "squeeze"})


@dataclass
class TracedModel:
    """An fx graph of a model with torchvision node names, in execution order."""

    graph_module: fx.GraphModule
    nodes: list[fx.Node]  # named nodes only, in execution order
    names: dict[fx.Node, str]
    by_name: dict[str, fx.Node]

    def module_of(self, node: fx.Node) -> nn.Module | None:
        """The submodule a ``call_module`` node calls (``None`` for other nodes)."""
        if node.op != "call_module":
            return None
        return self.graph_module.get_submodule(str(node.target))

    def is_conv(self, node: fx.Node) -> bool:
        """Whether the node is the output of a 2-D convolution.

        torchvision's ``Conv2dNormActivation`` blocks are leaf modules for its tracer (one node
        for conv, norm and activation together); they count as convs.
        """
        return isinstance(self.module_of(node), nn.Conv2d | ConvNormActivation) or (
            node.op == "call_function" and node.target is F.conv2d
        )

    def is_rectified_conv(self, node: fx.Node) -> bool:
        """Whether the node is a Conv2dNormActivation block that ends in an activation."""
        module = self.module_of(node)
        return isinstance(module, ConvNormActivation) and isinstance(
            list(module.children())[-1], ACTIVATION_MODULES
        )

    def is_activation(self, node: fx.Node) -> bool:
        """Whether the node applies a pointwise non-linearity (ReLU and friends)."""
        return self._is_one_of(node, ACTIVATION_MODULES, ACTIVATION_FUNCTIONS, ACTIVATION_METHODS)

    def is_norm(self, node: fx.Node) -> bool:
        """Whether the node is a normalisation layer (BatchNorm and friends)."""
        return isinstance(self.module_of(node), NORM_MODULES) or (
            node.op == "call_function" and node.target is F.batch_norm
        )

    def is_barrier(self, node: fx.Node) -> bool:
        """Whether the node turns feature maps into something else (flatten, linear, GAP)."""
        return self._is_one_of(node, _BARRIER_MODULES, _BARRIER_FUNCTIONS, _BARRIER_METHODS)

    def _is_one_of(
        self,
        node: fx.Node,
        modules: tuple[type[nn.Module], ...],
        functions: frozenset[object],
        methods: frozenset[str],
    ) -> bool:
        """Whether the node calls one of ``modules``, ``functions`` or tensor ``methods``."""
        if node.op == "call_module":
            return isinstance(self.module_of(node), modules)
        if node.op == "call_function":
            return node.target in functions
        return node.op == "call_method" and node.target in methods

    def users(self, node: fx.Node) -> list[fx.Node]:
        """The named nodes that consume ``node``'s output."""
        return [user for user in node.users if user in self.names]


def _default_tracer_kwargs() -> dict[str, object]:
    # The same defaults as get_graph_node_names, so our names are exactly its names.
    ops_modules = [
        obj
        for _, obj in inspect.getmembers(torchvision.ops)
        if inspect.isclass(obj) and issubclass(obj, nn.Module)
    ]
    return {"autowrap_modules": (math, torchvision.ops), "leaf_modules": ops_modules}


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the block, then restore the caller's training flags."""
    flags = {name: sub.training for name, sub in module.named_modules()}
    module.eval()
    try:
        yield module
    finally:
        for name, sub in module.named_modules():
            sub.training = flags.get(name, sub.training)


def trace_model(module: nn.Module) -> TracedModel:
    """Trace ``module`` in eval mode (restoring its mode afterwards) with torchvision node names.

    Raises:
        ModelError: the model cannot be traced symbolically (data-dependent control flow).
    """
    tracer = NodePathTracer(**_default_tracer_kwargs())
    with eval_mode(module):
        try:
            graph = tracer.trace(module)
        except Exception as error:  # fx raises many types (TraceError, TypeError, ...)
            raise ModelError(
                f"cannot trace {type(module).__name__} with torch.fx ({error}); wrap the "
                "untraceable part in a module with a plain forward, or use a traceable model"
            ) from error
    graph_module = fx.GraphModule(tracer.root, graph, type(module).__name__)
    names: dict[fx.Node, str] = dict(tracer.node_to_qualname)
    nodes = [node for node in graph.nodes if node in names]
    return TracedModel(graph_module, nodes, names, {names[node]: node for node in nodes})


def trunk_nodes(traced: TracedModel) -> set[fx.Node]:
    """Nodes whose output is a feature map of the conv trunk: fed by a conv, no flatten between."""
    fed: set[fx.Node] = set()
    for node in traced.graph_module.graph.nodes:
        fed_by_conv = not traced.is_barrier(node) and any(a in fed for a in node.all_input_nodes)
        if traced.is_conv(node) or fed_by_conv:
            fed.add(node)
    return fed


def node_shapes(traced: TracedModel, input_size: int) -> dict[fx.Node, tuple[int, ...]]:
    """The output shape of every tensor-valued node for one ``input_size`` square RGB image.

    Runs one forward pass of the traced graph in eval mode without gradients, on the device of
    the model's parameters.
    """
    module = traced.graph_module
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    shapes: dict[fx.Node, tuple[int, ...]] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> object:
            result = super().run_node(n)
            if isinstance(result, torch.Tensor):
                shapes[n] = tuple(result.shape)
            return result

    sample = torch.zeros(1, 3, input_size, input_size, device=device, dtype=dtype)
    with eval_mode(module), torch.no_grad():
        try:
            _Recorder(module).run(sample)
        except RuntimeError as error:
            raise ModelError(
                f"a forward pass of {input_size}x{input_size} images failed ({error}); "
                "check the model's input size"
            ) from error
    return shapes


__all__ = [
    "ACTIVATION_FUNCTIONS",
    "ACTIVATION_MODULES",
    "TracedModel",
    "eval_mode",
    "node_shapes",
    "trace_model",
    "trunk_nodes",
]
