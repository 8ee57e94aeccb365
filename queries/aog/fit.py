"""How well a template fits an image in one reading: the authors' OR-node score (PG
``produceMap.m:75-81``, ``updateModel.m:22-33``), used to pick the reading (docs/faithfulness.md,
change 3).

Per template: the weighted mean over its patterns of a local term (the log of the capped
confidence where the pattern fires, a fixed penalty below the firing floor where it does not)
plus ``5 x super_loc``, super_loc = -4 d² / (0.625 crop)² with d the distance of the pattern's
vote to the template's peak (PG: -4 d² / 19600 at 224 px). A mirrored asymmetric pose fails it:
its patterns either do not fire or vote apart. Batched over images, templates and patterns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun
from queries.aog.vote import vote_maps, voter_inputs

MISS_PENALTY = 1.0  # log units below the firing floor for a pattern that does not fire
AGREEMENT_WEIGHT = 5.0  # PG's weight of super_loc
AGREEMENT_SCALE = 0.625  # PG's 140 px at a 224 px crop


def template_fit(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    run: GraphRun,
    inputs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[n]`` the best template's fit to each image of ``run`` (one reading; ``inputs``: the
    voters' positions and confidences where they do not come from ``run``)."""
    settings, size = aog.settings, aog.input_size
    positions, confidence = inputs or voter_inputs(aog, layer_names, run)
    offsets = torch.tensor(aog.uses[["dx", "dy"]].to_numpy(np.float64)).float()
    weights = torch.tensor(aog.uses["weight"].to_numpy(np.float64)).float()
    template = torch.tensor(aog.uses["template"].to_numpy(np.int64))
    n_templates = max(t.index for t in aog.templates) + 1
    fires = confidence >= settings.min_confidence
    floor = math.log(max(settings.min_confidence, 1e-6))
    local = torch.where(
        fires,
        torch.log(
            confidence.clamp(min=max(settings.min_confidence, 1e-6), max=settings.confidence_cap)
        ),
        torch.full_like(confidence, floor - MISS_PENALTY),
    )
    centres = positions + offsets[None]
    amplitude = torch.where(fires, weights[None], torch.zeros_like(confidence))
    maps = vote_maps(
        centres, amplitude, template, n_templates, size=size, sigma=settings.kernel_sigma(size)
    )  # [n, T, S, S]
    n, _, _, width = maps.shape
    arg = maps.reshape(n, n_templates, -1).argmax(dim=2)
    peaks = torch.stack([(arg % width).float(), (arg // width).float()], dim=-1) + 0.5  # [n, T, 2]
    d2 = ((centres - peaks[:, template]) ** 2).sum(-1)  # [n, K]
    agreement = -4.0 * d2 / (AGREEMENT_SCALE * size) ** 2
    term = local + AGREEMENT_WEIGHT * torch.where(fires, agreement, torch.zeros_like(agreement))
    onehot = torch.nn.functional.one_hot(template, n_templates).float()  # [K, T]
    per_template = (term * weights[None]) @ onehot / (weights @ onehot).clamp(min=1e-12)
    return per_template.amax(dim=1)


def fit_reading(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    runs: dict[bool, GraphRun],
    inputs: dict[bool, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """``[n]`` bool: the mirrored reading fits better than the plain one."""
    fit = {
        m: template_fit(aog, layer_names, runs[m], None if inputs is None else inputs[m])
        for m in (False, True)
    }
    return fit[True] > fit[False]


__all__ = ["fit_reading", "template_fit"]
