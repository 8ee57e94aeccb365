"""Explainer networks for test stores, written through the real write path
(:func:`graphstore.explainers.write_explainer`), with every figure the store keeps."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from graphstore import GraphStore
from graphstore.explainers import ExplainerRows, write_explainer


def sample_explainer(
    model_id: str,
    layer: str,
    *,
    parts: Sequence[str],
    purity: Sequence[float],
    control: bool = False,
    p_mean: float = 0.8,
) -> ExplainerRows:
    """The store rows of an explainer of ``layer``: filter ``i`` has best part ``parts[i]`` and
    purity ``purity[i]``; the other figures follow from ``p_mean`` (so two explainers differ)."""
    node = {
        "model_id": model_id,
        "layer": layer,
        "control": control,
        "n_filters": len(parts),
        "n_images": 40,
        "p_mean": p_mean,
        **{f"p_q{q}": p_mean + (q - 50) / 1000 for q in (10, 25, 50, 75, 90)},
        "p_histogram": json.dumps([1, 2, 3, 34]),
        "reconstruction_error": (1.0 - p_mean) / 4,
        "agreement": 0.99 if not control else 0.975,
        "accuracy": 0.9,
        "swapped_accuracy": 0.875,
        "mean_purity": float(np.mean(purity)),
        "pure_share": float(np.mean(np.asarray(purity) >= 0.5)),
        "raw_mean_purity": 0.25,
        "raw_pure_share": 0.125,
        "source": json.dumps({"explainer": "test.pt"}),
        "created": "2026-01-01T00:00:00+00:00",
    }
    filters = pd.DataFrame(
        {"idx": range(len(parts)), "purity": list(purity), "best_part": list(parts)}
    )
    return ExplainerRows(node, filters)


def write_sample_explainers(
    store: GraphStore, model_id: str, layer: str, parts: Sequence[str], purity: Sequence[float]
) -> list[str]:
    """Write an explainer of ``layer`` and its no-filter-loss control (``p`` lower, its
    filters' purity halved); returns their ids."""
    halved = [value / 2 for value in purity]
    return [
        write_explainer(store, sample_explainer(model_id, layer, parts=parts, purity=purity)),
        write_explainer(
            store,
            sample_explainer(model_id, layer, parts=parts, purity=halved, control=True, p_mean=0.7),
        ),
    ]


__all__ = ["sample_explainer", "write_sample_explainers"]
