"""The performer's side of an explainer: which module carries the layer, its maps, and a swap.

The explained layer is a performer node whose output is a module's output (a conv, or a conv
block such as MobileNetV2's ``Conv2dNormActivation``), so a forward hook can read it and replace
it. The map the explainer sees is the rectified response ``max(x, 0)`` (docs/method.md §2): for
a conv followed by a ReLU (the toy CNN, VGG) it is what the next layer receives, and a block that
ends in its own activation is rectified already. :func:`swapped_layer` puts a reconstruction in
the module's place for the length of a ``with`` block and always restores the model: the hook
is removed and the training mode set back, even when the block raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explgraph.core.errors import ModelError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.models.geometry import layer_geometry
from miner.models.spec import LayerGeometry, LoadedModel


@dataclass(frozen=True)
class PerformerLayer:
    """The explained layer: its node name, the module whose output it is, and its geometry."""

    node: str
    module: str
    geometry: LayerGeometry


def performer_layer(loaded: LoadedModel, layer: str) -> PerformerLayer:
    """Resolve ``layer`` (node name, alias, module path) to a hookable module of the performer.

    Raises:
        ModelError: unknown layer, not a 2-D map, or a node that is no module's output (an
            addition, a functional activation).
    """
    from miner.models._graph import trace_model
    from miner.models.layers import resolve_layers

    node_name = resolve_layers(loaded, [layer])[0]
    node = trace_model(loaded.module).by_name[node_name]
    if node.op != "call_module":
        raise ModelError(
            f"layer '{layer}' ({node_name}) is not the output of a module, so it cannot be "
            "swapped for a reconstruction; name a conv layer or a conv block"
        )
    geometry = layer_geometry(loaded, [node_name])[0]
    return PerformerLayer(node_name, str(node.target), geometry)


def normalise(images: torch.Tensor, loaded: LoadedModel) -> torch.Tensor:
    """uint8 ``N x 3 x S x S`` crops to the performer's normalised float input."""
    mean = torch.tensor(loaded.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode within, its own mode (per submodule) restored after."""
    modes = {name: m.training for name, m in module.named_modules()}
    module.eval()
    try:
        yield module
    finally:
        for name, m in module.named_modules():
            m.training = modes.get(name, m.training)


@torch.no_grad()
def layer_maps(
    loaded: LoadedModel,
    layer: PerformerLayer,
    images: torch.Tensor,
    *,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's rectified maps ``N x C x h x w`` and the performer's logits ``N x classes``.

    ``images`` are uint8 crops at the performer's input size; the results are on the CPU.
    """
    module = loaded.module
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        captured.append(torch.relu(output).cpu())

    logits: list[torch.Tensor] = []
    handle = module.get_submodule(layer.module).register_forward_hook(keep)
    try:
        with (
            _eval_mode(module),
            progress.task(f"performer maps at {layer.node}", len(images)) as bar,
        ):
            for start in range(0, len(images), batch_size):
                batch = normalise(images[start : start + batch_size], loaded).to(device)
                logits.append(module(batch).cpu())
                bar.advance(len(batch))
    finally:
        handle.remove()
    return torch.cat(captured), torch.cat(logits)


@contextmanager
def swapped_layer(
    module: nn.Module, layer: PerformerLayer, replace: Callable[[torch.Tensor], torch.Tensor]
) -> Iterator[nn.Module]:
    """Within: ``module`` in eval mode with the layer's output replaced by ``replace(output)``.

    ``replace`` gets the rectified map and returns the map the rest of the performer sees. The
    hook is removed and every submodule's training mode restored on the way out.
    """

    def swap(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        return replace(torch.relu(output))

    handle = module.get_submodule(layer.module).register_forward_hook(swap)
    try:
        with _eval_mode(module):
            yield module
    finally:
        handle.remove()


def performer_record(
    loaded: LoadedModel, layer: PerformerLayer, weights: str | None
) -> dict[str, Any]:
    """What an explainer checkpoint records about its performer: ``load_model(source,
    weights)`` loads it again (``weights`` as it was passed; a checkpoint file by its absolute
    path), the fingerprint tells whether it is still the same."""
    source = loaded.source
    if Path(source).is_file():
        source = str(Path(source).resolve())
    return {
        "source": source,
        "weights": weights,
        "weights_name": loaded.weights,
        "name": loaded.name,
        "fingerprint": loaded.fingerprint,
        "input_size": loaded.input_size,
        "classes": list(loaded.classes) if loaded.classes is not None else None,
        "layer": layer.node,
        "module": layer.module,
    }


def load_performer(
    record: Mapping[str, Any], device: torch.device | str = "cpu"
) -> tuple[LoadedModel, PerformerLayer]:
    """The performer an explainer was trained on, and its explained layer.

    Raises:
        ModelError: the performer cannot be loaded, or its weights changed since the explainer
            was trained (fingerprint mismatch).
    """
    from miner.models.loading import load_model

    source = str(record.get("source", ""))
    if not source:
        raise ModelError("the explainer checkpoint does not name its performer; train it again")
    weights = record.get("weights")
    loaded = load_model(source, None if weights is None else str(weights), device=device)
    if record.get("fingerprint") and loaded.fingerprint != record["fingerprint"]:
        raise ModelError(
            f"the performer {source} has changed since the explainer was trained (fingerprint "
            f"{loaded.fingerprint}, recorded {record['fingerprint']}); train the explainer again"
        )
    return loaded, performer_layer(loaded, str(record.get("layer", "")))


__all__ = [
    "PerformerLayer",
    "layer_maps",
    "load_performer",
    "normalise",
    "performer_layer",
    "performer_record",
    "swapped_layer",
]
