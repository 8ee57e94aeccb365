"""Graph statistics of one mined model, laid out so two models can be read side by side.

Per layer: filters, patterns, PARENT edges, the degree distributions (parents per pattern, children
per pattern of the layer below) and the mean spatial spread sigma, in input pixels and as a share
of the input side (the share is what compares across input sizes).
"""

from __future__ import annotations

from typing import Any

import torch

from miner.graph import ExplanatoryGraph

_QUANTILES = (0.5, 0.9)


def _distribution(values: torch.Tensor) -> dict[str, float]:
    """Mean, median, 90th percentile and maximum of a degree count, and its share of zeros."""
    if values.numel() == 0:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0.0, "zero_share": 0.0}
    floats = values.double()
    median, p90 = torch.quantile(floats, torch.tensor(_QUANTILES, dtype=torch.float64)).tolist()
    return {
        "mean": float(floats.mean()),
        "median": float(median),
        "p90": float(p90),
        "max": float(floats.max()),
        "zero_share": float((values == 0).double().mean()),
    }


def graph_statistics(graph: ExplanatoryGraph, input_size: int) -> dict[str, Any]:
    """Per-layer and total statistics of ``graph`` (a model of input side ``input_size`` px).

    Returns:
        ``{"layers": [...], "patterns": int, "edges": int, "mean_spread_share": float}``; each
        layer row holds ``layer, filters, patterns, patterns_per_filter, edges, parents``
        (distribution of parents per pattern), ``children`` (distribution of children per
        pattern, from the layer below; ``None`` on the bottom layer), ``spread_px`` and
        ``spread_share`` (mean sigma as input pixels and as a share of ``input_size``).
    """
    rows: list[dict[str, Any]] = []
    children: list[torch.Tensor | None] = [None] * len(graph.layers)
    for index in range(len(graph.layers) - 1):
        parents = graph.layers[index].parents
        upper = graph.layers[index + 1].num_patterns
        children[index + 1] = torch.bincount(parents[parents >= 0].reshape(-1), minlength=upper)
    total_patterns = total_edges = 0
    spread_sum = 0.0
    for index, layer in enumerate(graph.layers):
        geometry = layer.geometry
        parents_per = (layer.parents >= 0).sum(dim=1)
        edges = int(parents_per.sum())
        spread_px = layer.sigma.double() * geometry.stride
        below = children[index]
        rows.append(
            {
                "layer": geometry.name,
                "filters": geometry.channels,
                "patterns": layer.num_patterns,
                "patterns_per_filter": layer.per_filter,
                "edges": edges,
                "parents": _distribution(parents_per),
                "children": None if below is None else _distribution(below),
                "spread_px": float(spread_px.mean()) if layer.num_patterns else 0.0,
                "spread_share": float(spread_px.mean() / input_size) if layer.num_patterns else 0.0,
            }
        )
        total_patterns += layer.num_patterns
        total_edges += edges
        spread_sum += float(spread_px.sum()) / input_size
    return {
        "layers": rows,
        "patterns": total_patterns,
        "edges": total_edges,
        "mean_spread_share": spread_sum / total_patterns if total_patterns else 0.0,
    }


__all__ = ["graph_statistics"]
