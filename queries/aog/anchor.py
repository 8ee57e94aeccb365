"""Template-anchored search (docs/faithfulness.md, change 5; PG ``getGenDisL_core_mex.cpp:97-149``).

The general graph inference searches every node around its dataset prior μ (shifted by its
parents). The authors' AOG instead re-searches each latent pattern around where it sat on the
template's own annotated image, and moves it with its parents relative to their positions
there. Here a template's shot, read in its template's frame, replaces μ by the node's position
on the shot and each parent's mean by that parent's position on the shot; the graph is then
inferred on new images with those priors (same windows, σ and parents), one pass per template.
Batched over images and nodes; the loop is over a draw's few templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from miner.graph import ExplanatoryGraph, FeatureSource, infer_graph
from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun, run_both
from queries.aog.vote import voter_inputs


def anchored_graphs(
    graph: ExplanatoryGraph, shots: FeatureSource, flipped: Sequence[bool]
) -> list[ExplanatoryGraph]:
    """One graph per shot (row of ``shots``, read mirrored where ``flipped`` says): every
    node's μ at its position on the shot, every parent mean at the parent's position there."""
    flags = torch.tensor([bool(f) for f in flipped])
    inference = infer_graph(graph, shots, 0, len(flags), flipped=flags)
    out = []
    for k in range(len(flags)):
        layers = []
        for i, lp in enumerate(graph.layers):
            mu = inference.layers[i].positions[k].to(lp.mu.dtype)
            parent_mean = lp.parent_mean
            if i + 1 < len(graph.layers):
                upper = inference.layers[i + 1].positions[k].to(lp.parent_mean.dtype)
                valid = (lp.parents >= 0)[..., None]
                parent_mean = torch.where(valid, upper[lp.parents.clamp(min=0)], lp.parent_mean)
            layers.append(replace(lp, mu=mu, parent_mean=parent_mean))
        out.append(replace(graph, layers=layers))
    return out


def anchored_inputs(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    graphs: dict[int, ExplanatoryGraph],
    features: FeatureSource,
    start: int,
    stop: int,
    *,
    device: str | torch.device = "cpu",
) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
    """Per reading the voters' positions ``[n, K, 2]`` and confidences ``[n, K]``, each USES row
    read from its own template's anchored inference (``graphs``: template index -> graph)."""
    template = aog.uses["template"].to_numpy(np.int64)
    out: dict[bool, tuple[torch.Tensor, torch.Tensor]] = {}
    for t, graph in graphs.items():
        rows = torch.from_numpy(np.flatnonzero(template == t))
        if len(rows) == 0:
            continue
        runs: dict[bool, GraphRun] = run_both(graph, features, start, stop, device=device)
        for mirrored, run in runs.items():
            pos, conf = voter_inputs(aog, layer_names, run)
            if mirrored not in out:
                out[mirrored] = (torch.zeros_like(pos), torch.zeros_like(conf))
            out[mirrored][0][:, rows] = pos[:, rows]
            out[mirrored][1][:, rows] = conf[:, rows]
    return out


__all__ = ["anchored_graphs", "anchored_inputs"]
