"""The interpretable conv layer of Zhang, Wu and Zhu, "Interpretable Convolutional Neural Networks"
(CVPR 2018): a part-template mask after a conv layer's ReLU and the filter loss that teaches each
filter to fire on one part. The derivation is written out in ``docs/interpretable.md``.

For an ``h x w`` feature map ``x`` of one filter (after the ReLU):

- the *mask* centres a template on the map's arg-max ``mû``:
  ``mask_ij = max(1 - beta * (|i - mû_i| / h + |j - mû_j| / w), -1)``, and the map passed on to the
  rest of the network is ``max(x * mask, 0)`` (``mû`` is a selection, not differentiated);
- the *templates* are one positive template per map position ``mu``,
  ``T^mu_ij = tau * max(1 - beta * (|i - mu_i| / h + |j - mu_j| / w), -1)``, and one negative
  template ``T^- = -tau`` everywhere, with priors ``p(T^mu) = alpha / (h w)``,
  ``p(T^-) = 1 - alpha``;
- the *filter loss* is minus the mutual information between the filter's maps ``X`` (one per
  image in the batch) and the templates: ``p(x|T) = exp(tr(x . T)) / Z_T`` (``Z_T`` sums over the
  batch), ``p(x) = sum_T p(T) p(x|T)``, ``loss = -sum_T p(T) sum_x p(x|T) log(p(x|T) / p(x))``.

Everything is batched over images and filters: one ``einsum`` scores every map against every
template. The module keeps the loss of its last training forward in :attr:`TemplateMask.loss`;
:func:`filter_loss_of` sums it over a model's interpretable layers, beside the task loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import fx, nn

from explgraph.core.errors import ModelError

PAPER_BETA = 4.0


@dataclass(frozen=True)
class InterpretableSpec:
    """Where the interpretable layer sits and its template parameters (recorded in checkpoints).

    Attributes:
        layer: the conv layer whose filters are made interpretable (a node name).
        activation: the module path of the activation that is wrapped with the mask.
        height, width: the layer's map size at the model's input size.
        beta: template sharpness (4 in the paper): the positive part of a template reaches
            ``1 / beta`` of the map side (L1 distance).
        tau: template scale; ``None`` means the paper's ``0.5 / (h w)``.
        alpha: prior mass of the positive templates; ``None`` means ``hw / (1 + hw)``
            (every template, negative included, equally likely).
        weight: the factor of the summed filter loss in the total loss (lambda).
    """

    layer: str
    activation: str
    height: int
    width: int
    beta: float = PAPER_BETA
    tau: float | None = None
    alpha: float | None = None
    weight: float = 1.0

    @property
    def resolved_tau(self) -> float:
        """``tau``, or the paper's ``0.5 / (h w)``."""
        return self.tau if self.tau is not None else 0.5 / (self.height * self.width)

    @property
    def resolved_alpha(self) -> float:
        """``alpha``, or ``hw / (1 + hw)``."""
        area = self.height * self.width
        return self.alpha if self.alpha is not None else area / (1.0 + area)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the resolved tau and alpha too)."""
        return {**asdict(self), "tau_value": self.resolved_tau, "alpha_value": self.resolved_alpha}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InterpretableSpec:
        """Read :meth:`to_dict`'s output back.

        Raises:
            ModelError: a required key is missing.
        """
        try:
            return cls(
                layer=str(data["layer"]),
                activation=str(data["activation"]),
                height=int(data["height"]),
                width=int(data["width"]),
                beta=float(data.get("beta", PAPER_BETA)),
                tau=None if data.get("tau") is None else float(data["tau"]),
                alpha=None if data.get("alpha") is None else float(data["alpha"]),
                weight=float(data.get("weight", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(
                f"the checkpoint's interpretable-layer record is incomplete ({error}); "
                "re-create it with `explgraph train --interpretable`"
            ) from error


def _grid_distance(
    height: int, width: int, centre_row: torch.Tensor, centre_col: torch.Tensor
) -> torch.Tensor:
    """Normalised L1 distance ``|i - r| / h + |j - c| / w`` of every unit to each centre.

    ``centre_row``/``centre_col`` have any shape ``S``; the result is ``S x h x w``.
    """
    rows = torch.arange(height, device=centre_row.device, dtype=torch.float32)
    cols = torch.arange(width, device=centre_row.device, dtype=torch.float32)
    d_row = (rows - centre_row[..., None].float()).abs() / height  # S x h
    d_col = (cols - centre_col[..., None].float()).abs() / width  # S x w
    return d_row[..., :, None] + d_col[..., None, :]


def part_templates(height: int, width: int, beta: float, tau: float) -> torch.Tensor:
    """The ``(h w + 1) x h x w`` templates: one positive per position (row-major), then ``T^-``."""
    centres = torch.arange(height * width)
    distance = _grid_distance(height, width, centres // width, centres % width)
    positive = tau * torch.clamp(1.0 - beta * distance, min=-1.0)
    negative = torch.full((1, height, width), -tau)
    return torch.cat([positive, negative])


def template_log_priors(height: int, width: int, alpha: float) -> torch.Tensor:
    """``log p(T)`` of :func:`part_templates`' order: ``alpha / hw`` each, then ``1 - alpha``."""
    area = height * width
    priors = torch.full((area + 1,), alpha / area)
    priors[-1] = 1.0 - alpha
    return priors.log()


def part_mask(
    maps: torch.Tensor, beta: float, height: int | None = None, width: int | None = None
) -> torch.Tensor:
    """The mask of every map: a template of height 1 centred on the map's arg-max.

    Args:
        maps: ``N x C x h x w``.
        beta: template sharpness.
        height, width: the map size when known (keeps the function traceable by torch.fx).

    Returns:
        ``N x C x h x w`` values in ``[-1, 1]``; 1 at the peak.
    """
    if height is None or width is None:
        height, width = int(maps.shape[2]), int(maps.shape[3])
    peak = maps.flatten(2).argmax(dim=-1)  # N x C
    distance = _grid_distance(height, width, peak // width, peak % width)
    return torch.clamp(1.0 - beta * distance, min=-1.0).to(maps.dtype)


def filter_loss(
    maps: torch.Tensor, templates: torch.Tensor, log_priors: torch.Tensor
) -> torch.Tensor:
    """Minus the mutual information ``MI(X; T)`` of each filter, over the images of the batch.

    Args:
        maps: ``N x C x h x w`` rectified maps (N images, C filters).
        templates: ``M x h x w`` (from :func:`part_templates`).
        log_priors: ``M`` values ``log p(T)``.

    Returns:
        ``C`` losses (nats); ``-H(T) <= loss <= 0``.
    """
    scores = torch.einsum("nchw,mhw->cmn", maps, templates.to(maps.dtype))  # tr(x . T)
    log_likelihood = scores - torch.logsumexp(scores, dim=-1, keepdim=True)  # log p(x|T)
    log_priors = log_priors.to(maps.dtype)
    log_marginal = torch.logsumexp(log_priors[None, :, None] + log_likelihood, dim=1)  # log p(x)
    pointwise = log_likelihood.exp() * (log_likelihood - log_marginal[:, None, :])
    information = (log_priors.exp()[None, :] * pointwise.sum(dim=-1)).sum(dim=-1)
    return -information


class TemplateMask(nn.Module):
    """Masks each filter's map with its part template; keeps the filter loss while training.

    Input and output ``N x C x h x w``; the output is ``max(x * mask, 0)``. In training mode with
    gradients on, :attr:`loss` holds the ``C`` filter losses of the last batch (else ``None``).
    """

    def __init__(self, spec: InterpretableSpec) -> None:
        super().__init__()
        self.spec = spec
        self.beta = float(spec.beta)
        templates = part_templates(spec.height, spec.width, spec.beta, spec.resolved_tau)
        priors = template_log_priors(spec.height, spec.width, spec.resolved_alpha)
        # Fixed by the spec: not weights, so they stay out of the state dict.
        self.templates: torch.Tensor
        self.log_priors: torch.Tensor
        self.register_buffer("templates", templates, persistent=False)
        self.register_buffer("log_priors", priors, persistent=False)
        self.loss: torch.Tensor | None = None

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """The masked maps (the loss is recorded on the side in training mode)."""
        if self.training and torch.is_grad_enabled():
            self.loss = filter_loss(maps, self.templates, self.log_priors)
        # The peak is a selection: no gradient flows through the mask, only through x.
        mask = part_mask(maps, self.beta, self.spec.height, self.spec.width)
        return torch.relu(maps * mask)

    def extra_repr(self) -> str:
        spec = self.spec
        return f"{spec.height}x{spec.width}, beta={spec.beta}, tau={spec.resolved_tau:.4g}"


class MaskedActivation(nn.Module):
    """An activation followed by a :class:`TemplateMask` (stands in for the layer's activation)."""

    def __init__(self, activation: nn.Module, mask: TemplateMask) -> None:
        super().__init__()
        self.activation = activation
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``mask(activation(x))``."""
        return self.mask(self.activation(x))


def _activation_after(model: nn.Module, layer: str, input_size: int) -> tuple[str, str, int, int]:
    """The layer's node name, the activation module that rectifies it, and its map size."""
    from miner.models._graph import node_shapes, trace_model
    from miner.models.layers import layer_aliases

    traced = trace_model(model)
    node = traced.by_name.get(layer_aliases(model).get(layer, layer))
    if node is None:
        raise ModelError(
            f"'{layer}' is not a layer of {type(model).__name__}; `explgraph mine --help` "
            "lists how to name layers (e.g. block4_conv2 for the toy CNN)"
        )
    shape = node_shapes(traced, input_size).get(node, ())
    if len(shape) != 4:
        raise ModelError(f"layer '{layer}' has no spatial feature map; name a conv layer")
    target: fx.Node | None = node
    while target is not None and not traced.is_activation(target):
        module = traced.module_of(target)
        if traced.is_rectified_conv(target) and module is not None:
            last = list(dict(module.named_children()))[-1]
            return traced.names[node], f"{target.target}.{last}", int(shape[2]), int(shape[3])
        users = traced.users(target)
        ok = target is node or traced.is_norm(target)
        target = users[0] if ok and len(users) == 1 else None
    if target is None or target.op != "call_module":
        raise ModelError(
            f"layer '{layer}' is not followed by a ReLU module (conv, optional norm, ReLU); "
            "the interpretable layer masks a rectified conv: pick such a layer"
        )
    return traced.names[node], str(target.target), int(shape[2]), int(shape[3])


def make_interpretable(
    model: nn.Module,
    layer: str,
    input_size: int,
    *,
    beta: float = PAPER_BETA,
    tau: float | None = None,
    alpha: float | None = None,
    weight: float = 1.0,
) -> InterpretableSpec:
    """Insert a :class:`TemplateMask` after ``layer``'s activation, in place; return its spec.

    Raises:
        ModelError: ``layer`` is unknown, has no spatial map, or is not followed by a ReLU.
    """
    name, activation, height, width = _activation_after(model, layer, input_size)
    spec = InterpretableSpec(name, activation, height, width, beta, tau, alpha, weight)
    attach_mask(model, spec)
    return spec


def attach_mask(model: nn.Module, spec: InterpretableSpec) -> nn.Module:
    """Wrap ``spec.activation`` of ``model`` (in place) with the mask ``spec`` describes.

    Raises:
        ModelError: the model has no such activation module (wrong architecture).
    """
    try:
        current = model.get_submodule(spec.activation)
    except AttributeError as error:
        raise ModelError(
            f"the model has no module '{spec.activation}' for the interpretable layer "
            f"{spec.layer}; the checkpoint does not fit its architecture"
        ) from error
    if isinstance(current, MaskedActivation):
        current = current.activation
    model.set_submodule(spec.activation, MaskedActivation(current, TemplateMask(spec)))
    return model


def template_masks(model: nn.Module) -> list[TemplateMask]:
    """Every interpretable layer's mask in ``model``."""
    return [m for m in model.modules() if isinstance(m, TemplateMask)]


def filter_loss_of(model: nn.Module) -> torch.Tensor | None:
    """``sum over layers of weight * sum over filters`` of the last training forward's losses.

    ``None`` when the model has no interpretable layer or none recorded a loss.
    """
    terms = [m.spec.weight * m.loss.sum() for m in template_masks(model) if m.loss is not None]
    if not terms:
        return None
    return torch.stack(terms).sum()


def mean_filter_loss(model: nn.Module) -> float:
    """The last recorded filter loss per filter (for logs); NaN when none was recorded."""
    losses = [m.loss.detach() for m in template_masks(model) if m.loss is not None]
    if not losses:
        return math.nan
    return float(torch.cat(losses).mean())


__all__ = [
    "PAPER_BETA",
    "InterpretableSpec",
    "MaskedActivation",
    "TemplateMask",
    "attach_mask",
    "filter_loss",
    "filter_loss_of",
    "make_interpretable",
    "mean_filter_loss",
    "part_mask",
    "part_templates",
    "template_log_priors",
    "template_masks",
]
