"""How an explainer does on held-out crops: ``p``, reconstruction, agreement, and part purity.

One call (:func:`explainer_report`) runs the performer on the crops without and with its layer
swapped for the explainer's reconstruction (:func:`miner.explainer.explain_images`) and measures
the part purity (:mod:`queries.filter_parts`) of two sets of filters on the same crops and parts:
the explainer's interpretable filters and the performer's raw filters of the explained layer.
The interpretable track keeps the layer's grid (1x1 and padded 3x3 convs), so both sets use the
layer's geometry to put arg-max units into crop pixels. Part annotations are used here only, to
measure; never to train.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import torch

from graphstore.explainers import ExplainerRows
from miner.explainer import AnnotatedCrops, Explainer, PDistribution, explain_images
from miner.explainer.evaluation import ExplainedImages, class_indices
from miner.explainer.performer import PerformerLayer
from miner.models.spec import LoadedModel
from queries.filter_parts import FilterPartReport, filter_part_report


@dataclass(frozen=True)
class ExplainerReport:
    """An explainer's figures on one set of held-out crops (see the module docstring).

    Attributes:
        p: the interpretable share over the crops (mean, quantiles, histogram).
        reconstruction_error: ``sum (max(r, 0) - f)^2 / sum f^2`` of the swapped map.
        agreement: share of crops whose top-1 class is the same with and without the swap.
        accuracy, swapped_accuracy: top-1 accuracy without and with the swap (``None`` when the
            crops' labels are not the performer's classes).
        interpretable, raw: part purity of the explainer's filters and of the layer's own.
    """

    layer: str
    control: bool
    n_images: int
    p: PDistribution
    reconstruction_error: float
    agreement: float
    accuracy: float | None
    swapped_accuracy: float | None
    interpretable: FilterPartReport
    raw: FilterPartReport

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (no per-filter tensors)."""
        return {
            "layer": self.layer,
            "control": self.control,
            "n_images": self.n_images,
            "p": self.p.to_dict(),
            "reconstruction_error": self.reconstruction_error,
            "agreement": self.agreement,
            "accuracy": self.accuracy,
            "swapped_accuracy": self.swapped_accuracy,
            "interpretable_filters": self.interpretable.to_dict(),
            "raw_filters": self.raw.to_dict(),
        }


def _purity(
    maps: torch.Tensor, crops: AnnotatedCrops, layer: PerformerLayer, top_k: int
) -> FilterPartReport:
    geometry = layer.geometry
    return filter_part_report(
        maps,
        crops.landmarks,
        crops.visible,
        crops.part_names,
        stride=geometry.stride,
        rf_offset=geometry.rf_offset,
        diagonal=math.hypot(crops.size, crops.size),
        top_k=top_k,
    )


def explainer_report(
    loaded: LoadedModel,
    layer: PerformerLayer,
    explainer: Explainer,
    crops: AnnotatedCrops,
    *,
    top_k: int = 20,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> ExplainerReport:
    """Measure ``explainer`` of ``layer`` of the performer ``loaded`` on ``crops``.

    Args:
        crops: held-out crops at the performer's input size, with their parts.
        top_k: images per filter for part purity (``queries.filter_parts``).
    """
    explained: ExplainedImages = explain_images(
        loaded, layer, explainer, crops.images, batch_size=batch_size, device=device
    )
    accuracy, swapped = explained.accuracies(class_indices(crops.labels, loaded.classes))
    return ExplainerReport(
        layer=layer.node,
        control=explainer.spec.control,
        n_images=len(crops),
        p=PDistribution.of(explained.p),
        reconstruction_error=explained.relative_error,
        agreement=explained.agreement,
        accuracy=accuracy,
        swapped_accuracy=swapped,
        interpretable=_purity(explained.interpretable, crops, layer, top_k),
        raw=_purity(explained.maps, crops, layer, top_k),
    )


def explainer_rows(
    report: ExplainerReport, model_id: str, *, n_filters: int, source: dict[str, Any]
) -> ExplainerRows:
    """``report`` as the store rows of the explainer of ``report.layer`` of the stored model
    ``model_id`` (:func:`graphstore.explainers.write_explainer`).

    Args:
        n_filters: filters per track of the explainer.
        source: what to keep about the explainer (its file, training data, settings), as JSON.
    """
    quantiles = {f"p_{name}": value for name, value in report.p.quantiles.items()}
    node: dict[str, Any] = {
        "model_id": model_id,
        "layer": report.layer,
        "control": report.control,
        "n_filters": n_filters,
        "n_images": report.n_images,
        "p_mean": report.p.mean,
        **quantiles,
        "p_histogram": json.dumps(report.p.histogram),
        "reconstruction_error": report.reconstruction_error,
        "agreement": report.agreement,
        "accuracy": report.accuracy,
        "swapped_accuracy": report.swapped_accuracy,
        "mean_purity": report.interpretable.mean_purity,
        "pure_share": report.interpretable.pure_share,
        "raw_mean_purity": report.raw.mean_purity,
        "raw_pure_share": report.raw.pure_share,
        "source": json.dumps(source, sort_keys=True, default=str),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    purity = report.interpretable.purity.double().cpu().numpy()
    filters = pd.DataFrame(
        {
            "idx": range(len(purity)),
            "purity": purity,
            "best_part": report.interpretable.dominant_part,
        }
    )
    return ExplainerRows(node, filters)


__all__ = ["ExplainerReport", "explainer_report", "explainer_rows"]
