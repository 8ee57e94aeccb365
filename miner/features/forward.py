"""Run a user's model up to the selected layers, and give the model back as it was.

The model is traced with torchvision's ``create_feature_extractor`` (works for any node name
``get_graph_node_names`` lists, adds no hooks, and skips the layers above the last one needed).
Afterwards every submodule has its old training flag and the parameters are back on their old
device.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

from explgraph.core.errors import ModelError

Forward = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype used on ``device`` (``None``: full float32)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# What FX records for ``x += y`` and friends.
_IN_PLACE_OPERATORS = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.ifloordiv,
    operator.imod,
    operator.ipow,
    operator.iand,
    operator.ior,
    operator.ixor,
    operator.ilshift,
    operator.irshift,
    operator.imatmul,
}


def _writes_in_place(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node`` may overwrite its inputs (``ReLU(inplace=True)``, ``x += y``, ``add_``)."""
    if node.op == "call_module":
        return bool(getattr(modules.get(str(node.target)), "inplace", False))
    if node.target in _IN_PLACE_OPERATORS or node.kwargs.get("inplace"):
        return True
    return node.op == "call_method" and str(node.target).endswith("_")  # x.add_(y)


def _copy_outputs(traced: fx.GraphModule) -> None:
    """Copy a returned layer output the moment it is computed, if anything writes to it later.

    Without the copy an in-place op further up (VGG's ``ReLU(inplace=True)`` after the conv,
    ResNet's ``out += identity``) overwrites the raw response before it is returned, and the std
    would be taken over ``max(x, 0)`` instead of ``x``.
    """
    graph = traced.graph
    modules = dict(traced.named_modules())
    output = next(node for node in graph.nodes if node.op == "output")
    returned: dict[str, fx.Node] = output.args[0]
    copies = dict(returned)
    for name, node in returned.items():
        if any(_writes_in_place(user, modules) for user in node.users if user is not output):
            with graph.inserting_after(node):
                copies[name] = graph.call_method("clone", (node,))
    output.args = (copies,)
    traced.recompile()


@contextlib.contextmanager
def layer_outputs(
    module: nn.Module, layers: Sequence[str], device: torch.device
) -> Iterator[Forward]:
    """A function from a normalised input batch to ``{layer: raw output}``, in eval mode.

    Inside the block the model is on ``device`` in eval mode; on exit everything is restored.
    """
    training = {name: sub.training for name, sub in module.named_modules()}
    first = next(iter(module.parameters()), None)
    home = first.device if first is not None else device
    try:
        try:
            traced = create_feature_extractor(module, return_nodes={name: name for name in layers})
        except ValueError as error:  # a node name the trace does not know
            raise ModelError(f"{error}; name layers as get_graph_node_names lists them") from error
        module.to(device)
        # Shares the user's submodules: this flips their training flags, restored below.
        traced.eval()
        _copy_outputs(traced)
        yield traced
    finally:
        for name, sub in module.named_modules():
            if name in training:
                sub.training = training[name]
        module.to(home)


__all__ = ["Forward", "autocast_dtype", "layer_outputs"]
