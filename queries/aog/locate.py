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
from miner.graph import FeatureSource
from queries.aog import appearance
from queries.aog.model import AndOrGraph, load_aog
from queries.aog.runtime import run_both
from queries.aog.vote import Votes, voter_contributions, votes_from_runs
from queries.loaded import LoadedGraph, PreparedImages
from queries.pictures import pixel_canvas, save_png

CHUNK = 32  # images per inference chunk: bounds memory of positions and vote maps


def aog_votes(
    aog: AndOrGraph,
    loaded: LoadedGraph,
    features: FeatureSource,
    start: int,
    stop: int,
    *,
    keep_maps: bool = False,
    appearance_check: bool = False,
) -> tuple[Votes, float]:
    """Infer the graph on images ``start:stop`` both ways and let the AOG vote. Returns the
    votes and the seconds spent in graph inference. With ``appearance_check`` (the AOG must hold
    its shots' descriptors) reading and location come from
    :func:`queries.aog.appearance.appearance_votes`."""
    runs = run_both(loaded.graph, features, start, stop, device=loaded.device)
    seconds = sum(run.seconds for run in runs.values())
    if appearance_check and aog.descriptors is not None:
        descriptors = torch.from_numpy(np.asarray(aog.descriptors, np.float32))
        votes = appearance.appearance_votes(
            aog, loaded.layer_names, runs, descriptors, features, start, stop, keep_maps=keep_maps
        )
        return votes, seconds
    return votes_from_runs(aog, loaded.layer_names, runs, keep_maps=keep_maps), seconds


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
    """Write the object crop with the vote map laid over it in red (opacity 0.6 x the map over
    its maximum), one PNG pixel per crop pixel (:mod:`queries.pictures`).

    Raises:
        InputError: ``path`` cannot be written.
    """
    crop = np.asarray(crop_to_box(load_image(record.path), record.box, size), dtype=np.uint8)
    heat = vote_map.numpy()
    heat = heat / heat.max() if heat.max() > 0 else heat
    red = np.zeros((*heat.shape, 4), dtype=np.float64)
    red[..., 0] = 1.0
    red[..., 3] = 0.6 * heat
    figure, axes = pixel_canvas(size, size)
    extent = (0.0, float(size), float(size), 0.0)
    axes.imshow(crop, interpolation="nearest", extent=extent)
    axes.imshow(red, interpolation="nearest", extent=extent)
    return save_png(figure, path, what="the vote map")


def _prediction(
    votes: Votes, row: int, record: ImageRecord, aog: AndOrGraph, top_voters: int
) -> PartPrediction:
    """Row ``row`` of ``votes`` as the prediction for ``record``, in its image's pixels."""
    box = record.box or full_box(load_image(record.path))
    crop = votes.xy[row].numpy().astype(np.float64)
    image_xy = from_crop_coords(crop, box, aog.input_size)
    return PartPrediction(
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


@dataclass
class _Locating:
    """What every chunk of one ``locate`` run shares."""

    loaded: LoadedGraph
    aog: AndOrGraph
    records: list[ImageRecord]
    prepared: PreparedImages
    top_voters: int
    vote_map_dir: Path | None
    appearance_check: bool


def _locate_chunk(
    run: _Locating, start: int, stop: int, predictions: list[PartPrediction | None]
) -> float:
    """Locate the part on prepared images ``start:stop`` (filling ``predictions``, writing vote
    maps where asked); returns the seconds of graph inference."""
    votes, graph_s = aog_votes(
        run.aog,
        run.loaded,
        run.prepared.features,
        start,
        stop,
        keep_maps=run.vote_map_dir is not None,
        appearance_check=run.appearance_check,
    )
    for row in range(stop - start):  # per-image output records, not per-pattern work
        index = run.prepared.kept[start + row]
        record = run.records[index]
        predictions[index] = _prediction(votes, row, record, run.aog, run.top_voters)
        if run.vote_map_dir is not None and votes.maps is not None:
            name = f"{index:04d}-{record.path.stem}-{run.aog.part}.png"
            save_vote_map(record, votes.maps[row], run.aog.input_size, run.vote_map_dir / name)
    return graph_s


def locate_part(
    store: GraphStore,
    loaded: LoadedGraph,
    part: str,
    records: Sequence[ImageRecord],
    *,
    top_voters: int = 5,
    vote_map_dir: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> LocateResult:
    """Predict the centre of ``part`` in every image with the part's stored AOG.

    Args:
        store: the store with the model's AOG.
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`).
        part: the part whose AOG was built with ``aog build``.
        records: the images (object box optional: the whole image otherwise).
        top_voters: patterns listed per prediction as the explanation.
        vote_map_dir: if given, a PNG of the deciding vote map per image is written there.
        progress: progress bars.

    Raises:
        StoreError: no AOG for that part; InputError: no usable image.
    """
    seconds = {"store": 0.0, "forward": 0.0, "graph": 0.0, "vote": 0.0}
    started = time.perf_counter()
    aog = load_aog(store, loaded.model_id, part)
    statistics = loaded.mining_statistics()
    seconds["store"] = time.perf_counter() - started
    records = list(records)
    prepared = loaded.prepare_images(records, statistics=statistics, progress=progress)
    seconds["forward"] = prepared.forward_s
    if vote_map_dir is not None:
        Path(vote_map_dir).mkdir(parents=True, exist_ok=True)
    # the reading and location check against the shots' part appearance (what `evaluate parts`
    # measures); AOGs stored before the check keep the stronger-vote reading
    run = _Locating(
        loaded,
        aog,
        records,
        prepared,
        top_voters,
        None if vote_map_dir is None else Path(vote_map_dir),
        appearance_check=aog.settings.orientation == "appearance" and aog.descriptors is not None,
    )
    predictions: list[PartPrediction | None] = [None] * len(records)
    n = prepared.features.num_images
    with progress.task(f"locating {part}", n) as bar:
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            tick = time.perf_counter()
            graph_s = _locate_chunk(run, start, stop, predictions)
            seconds["graph"] += graph_s
            seconds["vote"] += time.perf_counter() - tick - graph_s  # the rest is voting
            bar.advance(stop - start)
    skipped = {str(records[i].path): reason for i, reason in prepared.skipped.items()}
    return LocateResult(loaded.model_id, part, predictions, skipped, seconds)


__all__ = ["CHUNK", "LocateResult", "PartPrediction", "aog_votes", "locate_part", "save_vote_map"]
