"""What an explainer does on held-out images, measured in two batched passes of the performer.

1. The performer as it is: the layer's rectified maps and the logits.
2. The performer with the layer swapped for the explainer's reconstruction
   (:func:`miner.explainer.performer.swapped_layer`): the explainer runs inside the hook, so the
   same pass gives ``p``, the reconstruction and the interpretable filters' maps, and the
   logits the performer reaches from the reconstruction.

From these: ``p`` per image, the relative reconstruction error of the map the performer sees
(``sum (max(r, 0) - f)^2 / sum f^2``), the top-1 agreement of the two passes and, where the
images' labels are the performer's classes, both accuracies. The part purity of the filters
is :mod:`queries.explainer`'s (it needs :mod:`queries.filter_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from miner.explainer.network import Explainer
from miner.explainer.performer import PerformerLayer, layer_maps, normalise, swapped_layer
from miner.models.spec import LoadedModel

P_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
P_BINS = 10


@dataclass
class ExplainedImages:
    """The two passes over ``N`` images (tensors on the CPU).

    Attributes:
        maps: ``N x C x h x w`` the performer's rectified maps at the layer.
        interpretable: ``N x K x h x w`` the explainer's interpretable filters' maps.
        p: ``N`` the interpretable share per image.
        squared_error: ``N`` ``sum (max(r, 0) - f)^2`` per image; ``energy``: ``sum f^2``.
        logits, swapped_logits: ``N x classes`` without and with the swap.
    """

    maps: torch.Tensor
    interpretable: torch.Tensor
    p: torch.Tensor
    squared_error: torch.Tensor
    energy: torch.Tensor
    logits: torch.Tensor
    swapped_logits: torch.Tensor

    @property
    def relative_error(self) -> float:
        """``sum (max(r, 0) - f)^2 / sum f^2`` over all images."""
        return float(self.squared_error.sum() / self.energy.sum().clamp_min(1e-12))

    @property
    def agreement(self) -> float:
        """Share of images whose top-1 class is the same with and without the swap."""
        same = self.logits.argmax(1) == self.swapped_logits.argmax(1)
        return float(same.float().mean())

    def accuracies(self, labels: list[int | None]) -> tuple[float | None, float | None]:
        """Top-1 accuracy without and with the swap over the images with a class index
        (``None`` for both when no image has one)."""
        known = torch.tensor([label is not None for label in labels], dtype=torch.bool)
        if not bool(known.any()):
            return None, None
        target = torch.tensor([label if label is not None else -1 for label in labels])[known]
        original = (self.logits[known].argmax(1) == target).float().mean()
        swapped = (self.swapped_logits[known].argmax(1) == target).float().mean()
        return float(original), float(swapped)


@dataclass(frozen=True)
class PDistribution:
    """``p`` over a set of images: mean, quantiles and a histogram of ``P_BINS`` equal bins."""

    mean: float
    quantiles: dict[str, float]  # "q10" ... "q90"
    histogram: list[int]

    @classmethod
    def of(cls, p: torch.Tensor) -> PDistribution:
        """The distribution of the shares ``p`` (``N`` values in [0, 1])."""
        values = torch.quantile(p.double(), torch.tensor(P_QUANTILES, dtype=torch.float64))
        names = [f"q{round(q * 100)}" for q in P_QUANTILES]
        histogram = torch.histc(p.double(), bins=P_BINS, min=0.0, max=1.0)
        return cls(
            mean=float(p.mean()),
            quantiles={name: float(v) for name, v in zip(names, values, strict=True)},
            histogram=[int(c) for c in histogram],
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"mean": self.mean, "quantiles": self.quantiles, "histogram": self.histogram}


@torch.no_grad()
def explain_images(
    loaded: LoadedModel,
    layer: PerformerLayer,
    explainer: Explainer,
    images: torch.Tensor,
    *,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> ExplainedImages:
    """Run the performer on uint8 crops ``images`` without and with the swap (see the module).

    The explainer is put in eval mode for the passes and its mode restored; the performer comes
    back as it was (hook removed, training mode restored).
    """
    maps, logits = layer_maps(loaded, layer, images, batch_size=batch_size, device=device)
    seen: dict[str, list[torch.Tensor]] = {"interpretable": [], "p": [], "error": [], "energy": []}

    def reconstruct(rectified: torch.Tensor) -> torch.Tensor:
        output = explainer(rectified)
        swapped = torch.relu(output.reconstruction)
        seen["interpretable"].append(output.interpretable.cpu())
        seen["p"].append(output.p.cpu())
        seen["error"].append((swapped - rectified).pow(2).flatten(1).sum(1).cpu())
        seen["energy"].append(rectified.pow(2).flatten(1).sum(1).cpu())
        return swapped

    was_training = explainer.training
    explainer.eval()
    swapped_logits = []
    try:
        with swapped_layer(loaded.module, layer, reconstruct) as module:
            for start in range(0, len(images), batch_size):
                batch = normalise(images[start : start + batch_size], loaded).to(device)
                swapped_logits.append(module(batch).cpu())
    finally:
        explainer.train(was_training)
    return ExplainedImages(
        maps=maps,
        interpretable=torch.cat(seen["interpretable"]),
        p=torch.cat(seen["p"]),
        squared_error=torch.cat(seen["error"]),
        energy=torch.cat(seen["energy"]),
        logits=logits,
        swapped_logits=torch.cat(swapped_logits),
    )


def class_indices(labels: list[str | None], classes: list[str] | None) -> list[int | None]:
    """Each label's index among the performer's ``classes`` (``None``: unknown or unlabelled)."""
    index = {name: i for i, name in enumerate(classes or [])}
    return [index.get(label) if label is not None else None for label in labels]


__all__ = [
    "P_BINS",
    "P_QUANTILES",
    "ExplainedImages",
    "PDistribution",
    "class_indices",
    "explain_images",
]
