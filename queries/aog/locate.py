"""Few-shot part localisation with a stored And-Or graph (docs/method.md §8).

The graph is inferred on every image twice, as given and mirrored (batched over images). Every
kept pattern that fires (confidence ≥ ``min_confidence``) votes for the part at p̂ + Delta with
a Gaussian kernel; each template sums its votes; the OR node takes the best template and the
better orientation; the arg-max is the prediction, mapped back to original-image pixels. The
patterns that put most vote mass at the winning spot are the explanation ("because pattern X
fired here").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.images import crop_to_box, from_crop_coords, full_box, load_image
from miner.data.records import Box, ImageRecord
from queries.aog.model import AndOrGraph, load_aog
from queries.aog.runtime import (
    GraphRun,
    prepare_images,
    reference_std,
    resolve_device,
    run_graph,
)
from queries.aog.vote import best_vote, vote_maps, voter_contributions
from queries.graphs import StoredGraph, load_graph, load_stored_model
from queries.normalisation import TrainingNormalised

CHUNK = 32  # images per inference chunk: bounds memory of positions and vote maps


@dataclass
class Votes:
    """The OR node's answer for a chunk of images, both orientations already compared."""

    xy: torch.Tensor  # [n, 2] crop px, original orientation
    template: torch.Tensor  # [n]
    value: torch.Tensor  # [n]
    flipped: torch.Tensor  # [n] the mirrored reading won
    centres: torch.Tensor  # [n, K, 2] winning orientation's vote centres (its own frame)
    amplitude: torch.Tensor  # [n, K]
    positions: torch.Tensor  # [n, K, 2] voters' positions, original orientation
    maps: torch.Tensor | None = None  # [n, size, size] winning template's map, original frame


def voter_inputs(
    aog: AndOrGraph, layer_names: Sequence[str], run: GraphRun
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``[n, K, 2]`` and confidences ``[n, K]`` of the AOG's USES rows, in row order.

    ``run`` holds, per layer of ``layer_names``, the positions and confidences of whatever the
    USES rows' ``idx`` count (graph patterns, or raw filters for the baseline).
    """
    names = list(layer_names)
    layer_of = aog.uses["layer"].map({name: i for i, name in enumerate(names)}).to_numpy()
    idx = aog.uses["idx"].to_numpy(np.int64)
    n = run.pixels[0].shape[0]
    pos = torch.zeros(n, len(idx), 2)
    conf = torch.zeros(n, len(idx))
    for layer in np.unique(layer_of):  # a handful of layers; every image and pattern at once
        rows = torch.from_numpy(np.flatnonzero(layer_of == layer))
        cols = torch.tensor(idx[layer_of == layer])
        pos[:, rows] = run.pixels[int(layer)][:, cols].float()
        conf[:, rows] = run.confidence[int(layer)][:, cols].float()
    return pos, conf


def cast_votes(
    positions: dict[bool, torch.Tensor],
    confidence: dict[bool, torch.Tensor],
    offsets: torch.Tensor,
    weights: torch.Tensor,
    template: torch.Tensor,
    n_templates: int,
    *,
    size: int,
    sigma: float,
    min_confidence: float,
    confidence_cap: float,
    keep_maps: bool = False,
    use_mirror: torch.Tensor | None = None,
    all_templates: bool = False,
) -> Votes:
    """Vote in both orientations (``False`` plain, ``True`` mirrored) and keep the better.

    ``positions[o]`` are in orientation ``o``'s frame; offsets ``[K, 2]`` and weights ``[K]`` are
    the template rows; the result is in the original orientation. ``use_mirror`` ``[n]`` fixes
    the orientation per image; by default the reading with the stronger vote wins. With
    ``keep_maps`` the maps are the winning template's, or with ``all_templates`` the sum of every
    template's.
    """
    results = {}
    for mirrored, pos in positions.items():
        conf = confidence[mirrored]
        fires = conf >= min_confidence
        amplitude = torch.where(
            fires, weights[None] * conf.clamp(max=confidence_cap), torch.zeros_like(conf)
        )
        centres = pos + offsets[None]
        maps = vote_maps(centres, amplitude, template, n_templates, size=size, sigma=sigma)
        results[mirrored] = (best_vote(maps), centres, amplitude, maps)
    plain, mirror = results[False], results.get(True, results[False])
    if True not in results:
        use = torch.zeros_like(plain[0].value, dtype=torch.bool)
    elif use_mirror is not None:
        use = use_mirror.to(torch.bool)
    else:
        use = mirror[0].value > plain[0].value
    xy_m = mirror[0].xy.clone()
    xy_m[:, 0] = size - xy_m[:, 0]
    pos_m = positions.get(True, positions[False]).clone()
    pos_m[..., 0] = size - pos_m[..., 0]
    sel = use[:, None]
    maps_out = None
    if keep_maps and all_templates:
        map_p, map_m = plain[3].sum(dim=1), mirror[3].sum(dim=1).flip(-1)
        maps_out = torch.where(use[:, None, None], map_m, map_p)
    elif keep_maps:
        t_p = plain[0].template
        t_m = mirror[0].template
        n = len(use)
        map_p = plain[3][torch.arange(n), t_p]
        map_m = mirror[3][torch.arange(n), t_m].flip(-1)
        maps_out = torch.where(use[:, None, None], map_m, map_p)
    return Votes(
        xy=torch.where(sel, xy_m, plain[0].xy),
        template=torch.where(use, mirror[0].template, plain[0].template),
        value=torch.where(use, mirror[0].value, plain[0].value),
        flipped=use,
        centres=torch.where(sel[..., None], mirror[1], plain[1]),
        amplitude=torch.where(sel, mirror[2], plain[2]),
        positions=torch.where(sel[..., None], pos_m, positions[False]),
        maps=maps_out,
    )


def aog_votes(
    aog: AndOrGraph,
    stored: StoredGraph,
    features: TrainingNormalised,
    start: int,
    stop: int,
    *,
    device: torch.device,
    keep_maps: bool = False,
    appearance: bool = False,
) -> tuple[Votes, float]:
    """Infer the graph on images ``start:stop`` both ways and let the AOG vote. Returns the
    votes and the seconds spent in graph inference. With ``appearance`` (the AOG must hold its
    shots' descriptors) reading and location come from :func:`queries.aog.appearance.
    appearance_votes`."""
    runs = {
        mirrored: run_graph(
            stored,
            features,
            start,
            stop,
            orientation="mirror" if mirrored else "plain",
            device=device,
        )
        for mirrored in (False, True)
    }
    seconds = sum(run.seconds for run in runs.values())
    if appearance and aog.descriptors is not None:
        from queries.aog.appearance import appearance_votes  # it builds on this module

        descriptors = torch.from_numpy(np.asarray(aog.descriptors, np.float32))
        votes = appearance_votes(
            aog, stored.layer_names, runs, descriptors, features, start, stop, keep_maps=keep_maps
        )
        return votes, seconds
    return votes_from_runs(aog, stored.layer_names, runs, keep_maps=keep_maps), seconds


def votes_from_runs(
    aog: AndOrGraph,
    layer_names: Sequence[str],
    runs: dict[bool, GraphRun],
    *,
    keep_maps: bool = False,
    use_mirror: torch.Tensor | None = None,
    all_templates: bool = False,
) -> Votes:
    """Let the AOG vote on inference runs of the same images, plain (``False``) and mirrored.

    ``use_mirror`` ``[n]`` fixes the orientation per image; ``all_templates`` makes the kept
    maps the sum over templates (see :func:`cast_votes`). Otherwise, with
    ``settings.orientation == "graph"`` and top-layer soft scores in both runs, each image is
    read the way the explanatory graph explains it better (docs/method.md §5.5's criterion).
    """
    from miner.graph.inference import flip_criterion

    size = aog.input_size
    plain, mirror = runs.get(False), runs.get(True)
    if (
        use_mirror is None
        and aog.settings.orientation == "graph"
        and plain is not None
        and mirror is not None
        and plain.top_soft is not None
        and mirror.top_soft is not None
    ):
        use_mirror = flip_criterion(plain.top_soft, mirror.top_soft)
    positions, confidence = {}, {}
    for mirrored, run in runs.items():
        positions[mirrored], confidence[mirrored] = voter_inputs(aog, layer_names, run)
    uses = aog.uses
    return cast_votes(
        positions,
        confidence,
        torch.tensor(uses[["dx", "dy"]].to_numpy(np.float64)).float(),
        torch.tensor(uses["weight"].to_numpy(np.float64)).float(),
        torch.tensor(uses["template"].to_numpy(np.int64)),
        max(t.index for t in aog.templates) + 1,
        size=size,
        sigma=aog.settings.kernel_sigma(size),
        min_confidence=aog.settings.min_confidence,
        confidence_cap=aog.settings.confidence_cap,
        keep_maps=keep_maps,
        use_mirror=use_mirror,
        all_templates=all_templates,
    )


@dataclass
class PartPrediction:
    """Where the part is in one image, and why."""

    path: str
    x: float  # original-image pixels
    y: float
    crop_x: float  # model-input (object crop) pixels, original orientation
    crop_y: float
    template: int
    mirrored: bool
    score: float
    because: list[dict[str, Any]] = field(default_factory=list)

    def explanation(self) -> str:
        """One line: the strongest voters."""
        if not self.because:
            return "no pattern of the AOG fired on this image"
        parts = [
            f"pattern {v['pattern_id']} fired at ({v['x']:.0f}, {v['y']:.0f})"
            for v in self.because[:3]
        ]
        return "because " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "x": self.x,
            "y": self.y,
            "crop_x": self.crop_x,
            "crop_y": self.crop_y,
            "template": self.template,
            "mirrored": self.mirrored,
            "score": self.score,
            "because": self.because,
        }


@dataclass
class LocateResult:
    """Predictions for every input image (``None`` where the image could not be used)."""

    model_id: str
    part: str
    predictions: list[PartPrediction | None]
    skipped: dict[str, str]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``--json``."""
        return {
            "model_id": self.model_id,
            "part": self.part,
            "predictions": [p.to_dict() if p else None for p in self.predictions],
            "skipped": self.skipped,
            "seconds": self.seconds,
        }


def _explain(votes: Votes, row: int, aog: AndOrGraph, box: Box, top: int) -> list[dict[str, Any]]:
    size = aog.input_size
    sigma = aog.settings.kernel_sigma(size)
    at = votes.xy[row : row + 1].clone()
    if bool(votes.flipped[row]):
        at[:, 0] = size - at[:, 0]  # contributions are measured in the voting frame
    share = voter_contributions(
        votes.centres[row : row + 1], votes.amplitude[row : row + 1], at, sigma=sigma
    )[0]
    share = torch.where(
        torch.tensor(aog.uses["template"].to_numpy(np.int64)) == votes.template[row],
        share,
        torch.zeros_like(share),
    )
    total = float(share.sum())
    order = torch.argsort(share, descending=True)[:top]
    out = []
    for k in order.tolist():
        if float(share[k]) <= 0:
            break
        image_xy = from_crop_coords(votes.positions[row, k].numpy().astype(np.float64), box, size)
        out.append(
            {
                "pattern_id": str(aog.uses["pattern_id"].iloc[k]),
                "layer": str(aog.uses["layer"].iloc[k]),
                "x": float(image_xy[0]),
                "y": float(image_xy[1]),
                "share": float(share[k]) / total if total > 0 else 0.0,
            }
        )
    return out


def save_vote_map(record: ImageRecord, vote_map: torch.Tensor, size: int, path: Path) -> Path:
    """Write the object crop with the winning template's vote map laid over it in red."""
    from PIL import Image

    crop = np.asarray(crop_to_box(load_image(record.path), record.box, size), dtype=np.float32)
    heat = vote_map.numpy()
    heat = heat / heat.max() if heat.max() > 0 else heat
    out = crop * (1.0 - 0.6 * heat[..., None])
    out[..., 0] += 255.0 * 0.6 * heat
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(path)
    return path


def locate_part(
    store: GraphStore,
    model_id: str,
    part: str,
    records: Sequence[ImageRecord],
    *,
    cache_dir: Path,
    device: str = "cpu",
    top_voters: int = 5,
    vote_map_dir: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> LocateResult:
    """Predict the centre of ``part`` in every image with the part's stored AOG.

    Args:
        store: the store with the model and its AOG.
        model_id: the mined model.
        part: the part whose AOG was built with ``aog build``.
        records: the images (object box optional: the whole image otherwise).
        cache_dir: feature cache.
        device: where to run the CNN and the graph.
        top_voters: patterns listed per prediction as the explanation.
        vote_map_dir: if given, a PNG of the winning vote map per image is written there.
        progress: progress bars.

    Raises:
        StoreError: no AOG for that part; InputError: no usable image.
    """
    compute = resolve_device(device)
    seconds = {"store": 0.0, "forward": 0.0, "graph": 0.0, "vote": 0.0}
    started = time.perf_counter()
    stored = load_graph(store, model_id)
    aog = load_aog(store, model_id, part)
    reference = reference_std(stored, Path(cache_dir))
    seconds["store"] = time.perf_counter() - started
    model = load_stored_model(stored)
    records = list(records)
    prepared = prepare_images(
        stored,
        model,
        records,
        cache_dir=Path(cache_dir),
        device=str(compute),
        reference=reference,
        progress=progress,
    )
    seconds["forward"] = prepared.forward_s
    predictions: list[PartPrediction | None] = [None] * len(records)
    if vote_map_dir is not None:
        Path(vote_map_dir).mkdir(parents=True, exist_ok=True)
    n = prepared.features.num_images
    # the reading and location check against the shots' part appearance (what `evaluate parts`
    # measures); AOGs stored before the check keep the stronger-vote reading
    appearance = aog.settings.orientation == "appearance" and aog.descriptors is not None
    with progress.task(f"locating {part}", n) as bar:
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            tick = time.perf_counter()
            votes, graph_s = aog_votes(
                aog,
                stored,
                prepared.features,
                start,
                stop,
                device=compute,
                keep_maps=vote_map_dir is not None,
                appearance=appearance,
            )
            seconds["graph"] += graph_s
            seconds["vote"] -= graph_s  # what remains of the elapsed time below is voting
            for row in range(stop - start):  # per-image output records, not per-pattern work
                index = prepared.kept[start + row]
                record = records[index]
                box = record.box or full_box(load_image(record.path))
                crop = votes.xy[row].numpy().astype(np.float64)
                image_xy = from_crop_coords(crop, box, aog.input_size)
                predictions[index] = PartPrediction(
                    path=str(record.path),
                    x=float(image_xy[0]),
                    y=float(image_xy[1]),
                    crop_x=float(crop[0]),
                    crop_y=float(crop[1]),
                    template=int(votes.template[row]),
                    mirrored=bool(votes.flipped[row]),
                    score=float(votes.value[row]),
                    because=_explain(votes, row, aog, box, top_voters),
                )
                if vote_map_dir is not None and votes.maps is not None:
                    save_vote_map(
                        record,
                        votes.maps[row],
                        aog.input_size,
                        Path(vote_map_dir) / f"{index:04d}-{record.path.stem}-{part}.png",
                    )
            seconds["vote"] += time.perf_counter() - tick
            bar.advance(stop - start)
    skipped = {str(records[i].path): reason for i, reason in prepared.skipped.items()}
    return LocateResult(model_id, part, predictions, skipped, seconds)


__all__ = [
    "LocateResult",
    "PartPrediction",
    "Votes",
    "aog_votes",
    "cast_votes",
    "locate_part",
    "save_vote_map",
    "voter_inputs",
    "votes_from_runs",
]
