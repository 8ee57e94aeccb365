"""The explainer network: one batched module that explains one conv layer of a frozen performer.

Zhang, Yang, Liu, Wu and Zhu, "Unsupervised learning of neural networks to explain neural
networks" (2018/2019); the design and the figures are docs/explainer.md.

For the performer's rectified feature map ``f`` (``N x C x h x w``) at the explained layer:

- ``f`` is divided by one fixed scale (the RMS of the training maps, a buffer) so that every
  layer's loss is a *relative* error;
- **interpretable track**: ``1x1 conv (C -> H) + ReLU``, ``3x3 conv (H -> K) + ReLU``, the
  track's maps divided by their RMS over the batch (a running value at evaluation), then the
  project's part-template mask (:class:`miner.models.interpretable.TemplateMask`), which keeps
  each filter's peak neighbourhood and records the filter loss (minus the mutual information
  with the part templates) on the normalised maps in training;
- **ordinary track**: the same layers without mask or filter loss;
- **gate**: the per-channel mean and maximum of ``f`` -> ``Linear (2C -> G) + ReLU + Linear
  (G -> 1)`` -> sigmoid: one share ``p`` in ``[0, 1]`` per image;
- **mix**: ``x = p * x_interpretable + (1 - p) * x_ordinary`` (plus Gaussian noise of standard
  deviation ``noise`` in training, so the ordinary track cannot hide its content at a tiny
  amplitude when ``p`` is near 1);
- **decoder**: ``3x3 conv (K -> H) + ReLU``, ``1x1 conv (H -> C)``: the reconstruction of ``f``
  (the same layer: see docs/explainer.md for why not the next one).

Both tracks are divided by their own batch RMS so that neither can buy a larger share of ``x``
by growing its weights; the filter loss sees the same normalised maps, so ``tau`` alone sets
its scale. The loss (:func:`explainer_loss`) is ``reconstruction + lambda_f * sum_k
filter_loss_k - lambda_p * mean(log p)``; the control explainer is the same network with
``lambda_f = 0`` (the filter loss is still recorded, for the logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from explgraph.core.errors import ModelError
from miner.models.interpretable import PAPER_BETA, InterpretableSpec, TemplateMask, filter_loss_of

_EPS = 1e-6


@dataclass(frozen=True)
class ExplainerSpec:
    """The explainer's architecture and loss weights (recorded in its checkpoint).

    Attributes:
        layer: the performer's layer (node name) that is explained.
        module: the performer's module whose output is that layer's response (hooked).
        channels, height, width: the layer's map shape at the performer's input size.
        filters: filters per track (K); the tracks have the same shape so they can be mixed.
        hidden: width of the encoder's first and the decoder's first conv (H).
        gate_hidden: width of the gate's hidden layer (G).
        beta, tau: the part templates' sharpness and scale (``miner.models.interpretable``).
        filter_loss_weight: lambda_f (0 for the control explainer).
        p_weight: lambda_p, the weight of ``-mean(log p)``.
        noise: standard deviation of the training noise added to the mix (0: none).
        diversity_weight: lambda_d, the weight of the interpretable filters' overlap
            (:func:`filter_overlap`; 0: none).
    """

    layer: str
    module: str
    channels: int
    height: int
    width: int
    filters: int = 32
    hidden: int = 64
    gate_hidden: int = 32
    beta: float = PAPER_BETA
    tau: float = 0.1
    filter_loss_weight: float = 0.05
    p_weight: float = 0.05
    noise: float = 0.1
    diversity_weight: float = 0.0

    @property
    def control(self) -> bool:
        """Whether this is the control explainer (no filter loss on the interpretable track)."""
        return self.filter_loss_weight == 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExplainerSpec:
        """Read :meth:`to_dict`'s output back.

        Raises:
            ModelError: a required key is missing or a value has the wrong type.
        """
        known = {f.name: f.type for f in fields(cls)}
        try:
            values = {key: data[key] for key in known if key in data}
            return cls(**values)
        except TypeError as error:
            raise ModelError(
                f"the explainer checkpoint's spec is incomplete ({error}); train it again with "
                "`explgraph explain-net train`"
            ) from error

    def interpretable_spec(self) -> InterpretableSpec:
        """The part-template mask's spec for the interpretable track."""
        return InterpretableSpec(
            layer=self.layer,
            activation="interpretable",
            height=self.height,
            width=self.width,
            beta=self.beta,
            tau=self.tau,
            weight=self.filter_loss_weight,
        )


@dataclass
class ExplainerOutput:
    """One forward pass of the explainer over a batch.

    Attributes:
        reconstruction: ``N x C x h x w`` in the performer's units (not rectified).
        p: ``N`` shares of the interpretable track; ``log_p`` their logarithm.
        interpretable: ``N x K x h x w`` the interpretable filters' normalised maps (before the
            mask: their arg-max is the filter's position).
        ordinary: ``N x K x h x w`` the ordinary track's normalised maps.
    """

    reconstruction: torch.Tensor
    p: torch.Tensor
    log_p: torch.Tensor
    interpretable: torch.Tensor
    ordinary: torch.Tensor


class BatchScale(nn.Module):
    """The RMS of a batch of maps (a scalar); at evaluation its running average."""

    def __init__(self, momentum: float = 0.05) -> None:
        super().__init__()
        self.momentum = momentum
        self.running: torch.Tensor
        self.register_buffer("running", torch.ones(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """The scale to divide ``maps`` by."""
        if not self.training:
            return self.running
        rms = maps.pow(2).mean().add(_EPS).sqrt()
        with torch.no_grad():
            self.running.lerp_(rms.detach(), self.momentum)
        return rms


def _track(spec: ExplainerSpec) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(spec.channels, spec.hidden, 1),
        nn.ReLU(),
        nn.Conv2d(spec.hidden, spec.filters, 3, padding=1),
        nn.ReLU(),
    )


class Explainer(nn.Module):
    """The explainer of one performer layer (see the module docstring)."""

    def __init__(self, spec: ExplainerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.input_scale: torch.Tensor
        self.register_buffer("input_scale", torch.ones(()))
        self.interpretable = _track(spec)
        self.interpretable_scale = BatchScale()
        self.mask = TemplateMask(spec.interpretable_spec())
        self.ordinary = _track(spec)
        self.ordinary_scale = BatchScale()
        self.gate = nn.Sequential(
            nn.Linear(2 * spec.channels, spec.gate_hidden),
            nn.ReLU(),
            nn.Linear(spec.gate_hidden, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(spec.filters, spec.hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(spec.hidden, spec.channels, 1),
        )

    def set_input_scale(self, maps: torch.Tensor) -> None:
        """Fix the input scale to the RMS of ``maps`` (the training maps, before training)."""
        self.input_scale.fill_(float(maps.float().pow(2).mean().sqrt().clamp_min(_EPS)))

    def gate_logit(self, normalised: torch.Tensor) -> torch.Tensor:
        """The gate's logit per image from the normalised input maps."""
        pooled = torch.cat([normalised.mean(dim=(2, 3)), normalised.amax(dim=(2, 3))], dim=1)
        return self.gate(pooled).squeeze(1)

    def forward(self, maps: torch.Tensor) -> ExplainerOutput:
        """Explain a batch of the performer's rectified maps ``N x C x h x w``."""
        normalised = maps / self.input_scale
        raw_interpretable = self.interpretable(normalised)
        interpretable = raw_interpretable / self.interpretable_scale(raw_interpretable)
        masked = self.mask(interpretable)  # records the filter loss in training
        raw_ordinary = self.ordinary(normalised)
        ordinary = raw_ordinary / self.ordinary_scale(raw_ordinary)
        logit = self.gate_logit(normalised)
        p = torch.sigmoid(logit)[:, None, None, None]
        mixed = p * masked + (1 - p) * ordinary
        if self.training and self.spec.noise > 0:
            mixed = mixed + self.spec.noise * torch.randn_like(mixed)
        reconstruction = self.decoder(mixed) * self.input_scale
        return ExplainerOutput(
            reconstruction=reconstruction,
            p=p.flatten(),
            log_p=F.logsigmoid(logit),
            interpretable=interpretable,
            ordinary=ordinary,
        )


@dataclass
class ExplainerLoss:
    """The terms of one batch's loss (``total`` carries the gradient)."""

    total: torch.Tensor
    reconstruction: float
    filter: float  # mean filter loss per interpretable filter (nats), recorded even for controls
    p_term: float
    p_mean: float


def relative_error(reconstruction: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``sum (r - f)^2 / sum f^2`` over the batch (0: perfect; 1: as bad as predicting zero)."""
    return (reconstruction - maps).pow(2).sum() / maps.pow(2).sum().clamp_min(_EPS)


def filter_overlap(maps: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity between the ``K`` filters' maps (``N x K x h x w``) over the
    batch, off the diagonal: 0 when no two filters fire at the same places of the same images, 1
    when all fire alike (the collapse docs/explainer.md describes)."""
    vectors = F.normalize(maps.transpose(0, 1).flatten(1), dim=1, eps=_EPS)
    squared = (vectors @ vectors.T).pow(2)
    k = squared.shape[0]
    if k < 2:
        return squared.new_zeros(())
    return (squared.sum() - squared.diagonal().sum()) / (k * (k - 1))


def explainer_loss(model: Explainer, output: ExplainerOutput, maps: torch.Tensor) -> ExplainerLoss:
    """``reconstruction + lambda_f * sum_k filter_loss_k - lambda_p * mean(log p)`` of a batch.

    The reconstruction term is the squared error in units of the input scale (about the relative
    error); the filter loss is the one the mask recorded in this training forward.
    """
    scale = model.input_scale
    reconstruction = F.mse_loss(output.reconstruction / scale, maps / scale)
    p_term = -model.spec.p_weight * output.log_p.mean()
    total = reconstruction + p_term
    weighted_filter = filter_loss_of(model)
    if weighted_filter is not None:
        total = total + weighted_filter
    if model.spec.diversity_weight > 0:
        total = total + model.spec.diversity_weight * filter_overlap(output.interpretable)
    recorded = model.mask.loss
    return ExplainerLoss(
        total=total,
        reconstruction=float(reconstruction.detach()),
        filter=float(recorded.detach().mean()) if recorded is not None else float("nan"),
        p_term=float(p_term.detach()),
        p_mean=float(output.p.detach().mean()),
    )


__all__ = [
    "BatchScale",
    "Explainer",
    "ExplainerLoss",
    "ExplainerOutput",
    "ExplainerSpec",
    "explainer_loss",
    "filter_overlap",
    "relative_error",
]
