"""``explgraph evaluate parts``: few-shot part localisation error of the AOG and the baselines.

docs/method.md §7.2: the AOG is built from the shots (in memory; the store is only read), then every
test object that shows the part is located; the error of a prediction is its distance to the
nearest ground-truth centre of that part divided by the crop diagonal (input size · √2),
averaged over test objects. The baselines of :mod:`queries.aog.baselines` run on the same shots
and test images. Shot images are never test images; nothing is tuned on the test images, and
the whole run is deterministic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explgraph.errors import InputError
from explgraph.progress import NULL_PROGRESS, Progress
from graphstore.api import GraphStore
from miner.data.images import full_box, load_image, to_crop_coords
from miner.data.records import ImageRecord
from queries.aog import baselines
from queries.aog.build import build_aog
from queries.aog.locate import CHUNK, aog_votes
from queries.aog.runtime import (
    prepare_images,
    reference_std,
    resolve_device,
)
from queries.aog.select import SelectionSettings
from queries.aog.shots import ShotSet
from queries.graphs import load_graph, load_stored_model
from queries.normalisation import mined_features


@dataclass
class PartsReport:
    """Mean normalised distance of the AOG and each baseline over the test objects."""

    model_id: str
    part: str
    n_test: int
    n_shots: int
    aog: float
    baselines: dict[str, float]
    per_image: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, details: bool = False) -> dict[str, Any]:
        """The JSON object of ``--json``: ``{aog, baselines{name: value}, n_test, ...}``."""
        out: dict[str, Any] = {
            "model_id": self.model_id,
            "part": self.part,
            "aog": self.aog,
            "baselines": dict(self.baselines),
            "ratios": {
                name: self.aog / value if value > 0 else math.nan
                for name, value in self.baselines.items()
            },
            "n_test": self.n_test,
            "n_shots": self.n_shots,
            "templates": self.templates,
            "seconds": self.seconds,
        }
        if details:
            out["per_image"] = self.per_image
        return out


def _crop_points(records: Sequence[ImageRecord], part: str, size: int) -> np.ndarray:
    """``[N, 2]`` the part's visible keypoint in crop pixels of each record."""
    out = np.zeros((len(records), 2))
    for i, record in enumerate(records):  # one keypoint per image: not a hot loop
        box = record.box or full_box(load_image(record.path))
        point = record.parts[part]
        out[i] = to_crop_coords(np.array([point.x, point.y]), box, size)
    return out


def objects_with_part(records: Sequence[ImageRecord], shots: ShotSet) -> list[ImageRecord]:
    """The records that show the part, minus the shot images."""
    shot_paths = {shot.record.path.resolve() for shot in shots.shots}
    return [
        r for r in records if shots.part in r.visible_parts() and r.path.resolve() not in shot_paths
    ]


def evaluate_parts(
    store: GraphStore,
    model_id: str,
    shots: ShotSet,
    records: Sequence[ImageRecord],
    *,
    cache_dir: Path,
    settings: SelectionSettings | None = None,
    device: str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> PartsReport:
    """Build the AOG from ``shots`` and score it and the baselines on ``records``.

    Args:
        store: the store with the mined model (read only).
        model_id: the mined model.
        shots: 1-3 annotated training images of the part.
        records: test objects with part keypoints; those without the part visible and the shot
            images themselves are left out.
        cache_dir: feature cache.
        settings: AOG selection parameters.
        device: where to compute.
        progress: progress bars.

    Raises:
        InputError: no test object shows the part.
    """
    settings = settings or SelectionSettings()
    compute = resolve_device(device)
    tests = objects_with_part(records, shots)
    if not tests:
        raise InputError(
            f"no test image shows a visible {shots.part!r} (shot images excluded); "
            "check --split, --label and the part name"
        )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    built = build_aog(
        store, model_id, shots, cache_dir=cache_dir, settings=settings, device=device, write=False
    )
    aog = built.aog
    seconds["build"] = time.perf_counter() - started
    stored = load_graph(store, model_id)
    model = load_stored_model(stored)
    size = int(model.input_size)
    reference = reference_std(stored, Path(cache_dir))
    prepared = prepare_images(
        stored,
        model,
        tests,
        cache_dir=Path(cache_dir),
        device=str(compute),
        reference=reference,
        progress=progress,
    )
    kept = [tests[i] for i in prepared.kept]
    truth = torch.from_numpy(_crop_points(kept, shots.part, size)).float()
    shot_records = [shot.record for shot in shots.shots]
    shot_prepared = prepare_images(
        stored,
        model,
        shot_records,
        cache_dir=Path(cache_dir),
        device=str(compute),
        reference=reference,
    )
    shot_parts = np.stack(
        [
            to_crop_coords(
                np.array([s.x, s.y]), s.record.box or full_box(load_image(s.record.path)), size
            )
            for s in shots.shots
        ]
    )
    templates = np.array([s.template for s in shots.shots])
    layers = prepared.features.layers
    peaks = baselines.mined_reference_peaks(
        mined_features(stored, Path(cache_dir)), shot_prepared.features
    )
    shot_run = baselines.filter_run(
        shot_prepared.features, 0, len(shot_records), mirrored=False, reference=peaks
    )
    filter_aog = baselines.build_filter_aog(
        shot_run,
        shot_parts,
        templates,
        layers,
        model_id=model_id,
        part=shots.part,
        size=size,
        settings=settings,
    )
    descriptors = baselines.shot_descriptors(shot_prepared.features, shot_parts, size=size)
    predictions: dict[str, list[torch.Tensor]] = {
        name: [] for name in ("aog", "raw_filters", "nn_transfer")
    }
    started = time.perf_counter()
    n = prepared.features.num_images
    with progress.task(f"locating {shots.part}", n) as bar:
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            votes, _ = aog_votes(aog, stored, prepared.features, start, stop, device=compute)
            predictions["aog"].append(votes.xy)
            predictions["raw_filters"].append(
                baselines.filter_votes(filter_aog, prepared.features, start, stop, peaks).xy
            )
            predictions["nn_transfer"].append(
                baselines.nn_transfer(descriptors, prepared.features, start, stop, size=size)
            )
            bar.advance(stop - start)
    seconds["locate"] = time.perf_counter() - started
    xy = {name: torch.cat(parts) for name, parts in predictions.items()}
    xy["static_prior"] = baselines.static_prior(shot_parts, n)
    diagonal = size * math.sqrt(2.0)
    error = {name: ((p - truth).norm(dim=1) / diagonal) for name, p in xy.items()}
    per_image = [
        {
            "path": str(record.path),
            "truth": truth[i].tolist(),
            **{name: {"xy": xy[name][i].tolist(), "error": float(error[name][i])} for name in xy},
        }
        for i, record in enumerate(kept)
    ]
    return PartsReport(
        model_id=model_id,
        part=shots.part,
        n_test=n,
        n_shots=len(shots.shots),
        aog=float(error["aog"].mean()),
        baselines={name: float(error[name].mean()) for name in baselines.BASELINES},
        per_image=per_image,
        templates=aog.summary()["templates"],
        seconds=seconds,
    )


__all__ = ["PartsReport", "evaluate_parts", "objects_with_part"]
