"""Where the units of a conv layer sit in the input image: map size, stride, receptive field.

The geometry is computed by analysing the traced module graph: each node's unit ``0`` covers
input pixels ``lo .. hi`` (inclusive, padding counted) and neighbouring units are ``stride``
pixels apart. A conv or pool with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d``
maps ``(lo, hi, j)`` to ``(lo - p j, hi + ((k - 1) d - p) j, j s)``; pointwise operations keep it;
joins (residual adds, concatenations) take the union of their inputs. Map sizes come from one
forward pass at the model's input size. Nodes the analysis does not know (upsampling, custom
leaf modules that resize) fall back to probing with input gradients, which is approximate.

Coordinates are continuous input pixels with the origin at the top-left corner of the top-left
pixel (pixel ``i`` covers ``[i, i + 1)``), as in :mod:`miner.data.images`, so the receptive field
of unit ``u`` is centred at ``rf_offset + stride * u``. For VGG-16 at 224 px: conv4_3 is 28x28,
stride 8, receptive field 92 px, unit 0 centred at 4.0 px; conv5_3 is 14x14, stride 16, 196 px,
centred at 8.0 px.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn import functional as F
from torchvision.ops.misc import ConvNormActivation

from explgraph.core.errors import ModelError
from miner.models._graph import TracedModel, eval_mode, node_shapes
from miner.models.layers import _Resolver
from miner.models.spec import LayerGeometry, LoadedModel


@dataclass(frozen=True)
class _Axis:
    lo: float  # first input pixel (index) that unit 0 sees; negative inside the padding
    hi: float  # last input pixel (index) that unit 0 sees
    step: float  # stride in input pixels

    def window(self, kernel: int, stride: int, padding: int, dilation: int) -> _Axis:
        return _Axis(
            self.lo - padding * self.step,
            self.hi + ((kernel - 1) * dilation - padding) * self.step,
            self.step * stride,
        )


_Span = tuple[_Axis, _Axis]  # (y, x)
_UNKNOWN = "unknown"


def _pair(value: object) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    if isinstance(value, Sequence) and len(value) == 1:
        return int(value[0]), int(value[0])
    raise TypeError(f"not an int pair: {value!r}")


def _window_params(node: fx.Node, module: nn.Module | None) -> list[tuple[int, int, int, int]]:
    """(kernel, stride, padding, dilation) per axis (y, x) of a conv/pool node, or []."""
    if isinstance(module, ConvNormActivation):
        module = next(iter(module.children()))  # the conv; norm and activation are pointwise
    if isinstance(module, nn.Conv2d):
        kernel, stride, dilation = (
            _pair(module.kernel_size),
            _pair(module.stride),
            _pair(module.dilation),
        )
        if module.padding == "same":
            padding = tuple(((k - 1) * d) // 2 for k, d in zip(kernel, dilation, strict=True))
        elif module.padding == "valid":
            padding = (0, 0)
        else:
            padding = _pair(module.padding)
    elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        padding = _pair(module.padding)
        dilation = _pair(module.dilation) if isinstance(module, nn.MaxPool2d) else (1, 1)
    elif node.op == "call_function" and node.target in (F.max_pool2d, F.avg_pool2d):
        names = ("input", "kernel_size", "stride", "padding", "dilation")
        given = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
        kernel = _pair(given["kernel_size"])
        stride = _pair(given.get("stride") or given["kernel_size"])
        padding = _pair(given.get("padding", 0))
        dilation = _pair(given.get("dilation", 1)) if node.target is F.max_pool2d else (1, 1)
    else:
        return []
    return [(kernel[i], stride[i], int(padding[i]), dilation[i]) for i in range(2)]


def _analyse(
    traced: TracedModel, shapes: dict[fx.Node, tuple[int, ...]]
) -> dict[fx.Node, _Span | str]:
    """The span of unit 0 of every spatial node (or ``_UNKNOWN`` where analysis cannot tell)."""
    spans: dict[fx.Node, _Span | str] = {}
    for node in traced.graph_module.graph.nodes:
        shape = shapes.get(node)
        if shape is None or len(shape) != 4:
            continue
        if node.op == "placeholder":
            spans[node] = (_Axis(0, 0, 1), _Axis(0, 0, 1))
            continue
        inputs = [arg for arg in node.all_input_nodes if arg in spans]
        params = _window_params(node, traced.module_of(node))
        if params:
            source = spans.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
            if isinstance(source, tuple):
                spans[node] = (source[0].window(*params[0]), source[1].window(*params[1]))
            else:
                spans[node] = _UNKNOWN
            continue
        # Pointwise ops and joins: inputs of the same map size are unioned; 1x1 inputs only
        # broadcast (squeeze-excitation scales) and do not add to the receptive field.
        same = [arg for arg in inputs if shapes[arg][2:] == shape[2:]]
        resized = [arg for arg in inputs if shapes[arg][2:] not in (shape[2:], (1, 1))]
        known = [spans[arg] for arg in same if isinstance(spans[arg], tuple)]
        if resized or not same or len(known) != len(same):
            spans[node] = _UNKNOWN
            continue
        merged: list[_Axis] = []
        for axis in range(2):
            axes = [span[axis] for span in known if isinstance(span, tuple)]
            if len({a.step for a in axes}) != 1:
                break
            merged.append(_Axis(min(a.lo for a in axes), max(a.hi for a in axes), axes[0].step))
        spans[node] = (merged[0], merged[1]) if len(merged) == 2 else _UNKNOWN
    return spans


def _from_span(span: _Span) -> tuple[float, float, float]:
    """(stride, rf_size, rf_offset) from a span, taking the larger extent of the two axes."""
    y, x = span
    size = max(y.hi - y.lo + 1, x.hi - x.lo + 1)
    # Pixel index i is centred at i + 0.5 in corner-origin coordinates.
    offset_y, offset_x = (y.lo + y.hi) / 2 + 0.5, (x.lo + x.hi) / 2 + 0.5
    if y.step != x.step or offset_y != offset_x:
        raise ModelError(
            f"layer geometry differs between height and width (strides {y.step}/{x.step}); "
            "pick a layer after the non-square kernels"
        )
    return float(x.step), float(size), float(offset_x)


def _probe(module: nn.Module, name: str, input_size: int, height: int, width: int) -> _Span:
    """Estimate a node's span from the input-gradient support of two neighbouring units."""
    from torchvision.models.feature_extraction import create_feature_extractor

    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with eval_mode(module):
        extractor = create_feature_extractor(module, return_nodes=[name])
        generator = torch.Generator().manual_seed(0)
        uy, ux = height // 2, width // 2
        supports = []
        for unit_x in (ux, min(ux + 1, width - 1)):
            support = torch.zeros(input_size, input_size, dtype=torch.bool)
            for _ in range(3):  # union over random inputs: a ReLU may silence some paths
                image = torch.rand(1, 3, input_size, input_size, generator=generator)
                image = image.to(device).requires_grad_(True)
                out = extractor(image)[name]
                out[0, :, uy, unit_x].sum().backward()
                assert image.grad is not None
                support |= (image.grad[0].abs().sum(0) > 0).cpu()
            supports.append(support)

    def extent(support: torch.Tensor, dim: int) -> tuple[float, float]:
        hits = torch.nonzero(support.any(dim=dim)).flatten()
        if hits.numel() == 0:
            raise ModelError(f"layer {name} does not depend on its input; pick another layer")
        return float(hits.min()), float(hits.max())

    x_lo, x_hi = extent(supports[0], 0)
    y_lo, y_hi = extent(supports[0], 1)
    step = input_size / width
    if width > 1:
        next_lo, next_hi = extent(supports[1], 0)
        step = (next_lo + next_hi - x_lo - x_hi) / 2 or step
    # Shift back from the probed unit to unit 0 of each axis.
    return (
        _Axis(y_lo - uy * step, y_hi - uy * step, step),
        _Axis(x_lo - ux * step, x_hi - ux * step, step),
    )


def layer_geometry(loaded: LoadedModel, layer_names: Sequence[str]) -> list[LayerGeometry]:
    """Map size, stride and receptive field of each named layer at the model's input size.

    Names are resolved like :func:`~miner.models.layers.resolve_layers` does (aliases and module
    paths work) but kept in the given order; ``index`` is the position in that order. Works for
    any traceable model; the module's training mode is left as it was.

    Example:
        >>> vgg = load_model("vgg16", "none")
        >>> [g.stride for g in layer_geometry(vgg, ["conv4_3", "conv5_3"])]
        [8, 16]

    Raises:
        ModelError: an unknown layer name (listing the valid ones), or a layer that is not a
            2-D feature map.
    """
    resolver = _Resolver(loaded.module)
    nodes = [resolver.resolve(name) for name in layer_names]
    shapes = node_shapes(resolver.traced, loaded.input_size)
    spans = _analyse(resolver.traced, shapes)
    result = []
    for index, node in enumerate(nodes):
        name = resolver.traced.names[node]
        shape = shapes.get(node, ())
        if len(shape) != 4:
            raise ModelError(f"layer {name} is not a 2-D feature map (shape {shape}); pick a conv")
        _, channels, height, width = shape
        span = spans.get(node, _UNKNOWN)
        if not isinstance(span, tuple):
            span = _probe(loaded.module, name, loaded.input_size, height, width)
        stride, rf_size, rf_offset = _from_span(span)
        result.append(
            LayerGeometry(
                name=name,
                index=index,
                channels=channels,
                height=height,
                width=width,
                stride=stride,
                rf_size=rf_size,
                rf_offset=rf_offset,
            )
        )
    return result


__all__ = ["layer_geometry"]
