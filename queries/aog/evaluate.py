"""``explgraph evaluate parts``: few-shot part localisation error of the AOG and the baselines.

docs/method.md §7.2: the AOG is built from the shots (in memory; the store is only read), then every
test object that shows the part is located; the error of a prediction is its distance to the
nearest ground-truth centre of that part divided by the crop diagonal (input size · √2),
averaged over test objects. The baselines of :mod:`queries.aog.baselines` run on the same shots
and test images. Shot images are never test images; nothing is tuned on the test images, and
the whole run is deterministic.

One shot set says little (results swing severalfold between draws), so
:func:`evaluate_parts_draws` scores ``N`` seeded random shot sets from the training split on the
same test images (features and graph inference on them are computed once) and reports mean ± sd
per method. Every method's left/right accuracy is reported too: the share of test objects where
the prediction lies on the same side of the crop's vertical midline as the true part, which for
a part such as the head is whether the method got the facing right.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.images import full_box, load_image, to_crop_coords
from miner.data.records import ImageRecord
from miner.graph import ExplanatoryGraph
from miner.graph.inference import flip_criterion
from queries.aog import baselines, descriptors
from queries.aog.anchor import anchored_graphs, anchored_inputs
from queries.aog.appearance import appearance_votes, reading_similarities
from queries.aog.build import build_aog
from queries.aog.controls import (
    CONTROLS,
    ControlSettings,
    canonical_positions,
    contribution_verdict,
    control_predictions,
    graph_contribution,
)
from queries.aog.facing import (
    GraphFrame,
    canonical_facing,
    faces_left,
    graph_frame,
    majority_facing,
    reading_accuracy,
)
from queries.aog.locate import CHUNK
from queries.aog.model import AndOrGraph
from queries.aog.runtime import GraphRun, run_both
from queries.aog.select import SelectionSettings
from queries.aog.shots import Shot, ShotSet
from queries.aog.vote import votes_from_runs
from queries.loaded import LoadedGraph
from queries.normalisation import TrainingNormalised


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
    references: dict[str, float] = field(default_factory=dict)  # oracle: shown, not compared
    left_right: dict[str, float] = field(default_factory=dict)  # per method, incl. "aog"
    shots: list[str] = field(default_factory=list)
    controls: ControlSettings = field(default_factory=ControlSettings)
    sweep: dict[str, float] = field(default_factory=dict)  # dev only: shot prior at other σ
    frames: list[float] = field(default_factory=list)  # per shot, its canonical frame's facing
    # per reading method (aog, controls, graph) [n] whether each test object was read mirrored,
    # and [n] its annotated facing (1 left, 0 right, NaN unknown): not serialised
    readings: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    truth_left: torch.Tensor = field(default_factory=lambda: torch.zeros(0), repr=False)

    def contribution(self) -> tuple[float, str]:
        """Graph contribution: AOG error / the best appearance control's, and that control."""
        return graph_contribution(
            self.aog, {name: self.baselines[name] for name in CONTROLS if name in self.baselines}
        )

    def mirror_choice(self, frame_left: float) -> dict[str, float]:
        """Per reading method, how often its reading implies the annotated facing, the
        canonical frame facing ``frame_left`` (see :mod:`queries.aog.facing`)."""
        return {
            name: reading_accuracy(flags, self.truth_left, frame_left)
            for name, flags in self.readings.items()
        }

    def to_dict(self, *, details: bool = False) -> dict[str, Any]:
        """The JSON object of ``--json``: ``{aog, baselines{name: value}, n_test, ...}``."""
        contribution, best_control = self.contribution()
        out: dict[str, Any] = {
            "model_id": self.model_id,
            "part": self.part,
            "aog": self.aog,
            "baselines": dict(self.baselines),
            "ratios": {
                name: self.aog / value if value > 0 else math.nan
                for name, value in self.baselines.items()
            },
            "references": dict(self.references),
            "left_right_accuracy": dict(self.left_right),
            "graph_contribution": contribution,
            "best_control": best_control,
            "shot_prior_sigma": self.controls.sigma,
            "shot_prior_sweep": dict(self.sweep),
            "shot_frames": list(self.frames),
            "mirror_choice": self.mirror_choice(majority_facing(self.frames)),
            "n_test": self.n_test,
            "n_shots": self.n_shots,
            "shots": list(self.shots),
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


@dataclass
class PartsBench:
    """The test side of a part benchmark, computed once and shared by every shot draw."""

    loaded: LoadedGraph
    part: str
    tests: list[ImageRecord]  # usable test objects showing the part
    truth: torch.Tensor  # [n, 2] crop px
    features: TrainingNormalised
    runs: list[tuple[int, int, dict[bool, GraphRun]]]  # per chunk, plain and mirrored inference
    peaks: list[torch.Tensor]
    statistics: list[np.ndarray] | None  # the mining statistics the images were normalised by
    truth_left: torch.Tensor  # [n] annotated facing: 1 left, 0 right, NaN unknown
    graph_flip: torch.Tensor  # [n] the explanatory graph's own reading (its flip criterion)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The crop side."""
        return self.loaded.input_size


def _infer_tests(
    loaded: LoadedGraph, features: TrainingNormalised, progress: Progress
) -> list[tuple[int, int, dict[bool, GraphRun]]]:
    """The graph inferred on every test object, both orientations, chunk by chunk."""
    runs = []
    n = features.num_images
    with progress.task(f"inferring the graph on {n} test objects", n) as bar:
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            runs.append(
                (start, stop, run_both(loaded.graph, features, start, stop, device=loaded.device))
            )
            bar.advance(stop - start)
    return runs


def _graph_readings(runs: list[tuple[int, int, dict[bool, GraphRun]]]) -> torch.Tensor:
    """``[n]`` whether the explanatory graph explains each image better mirrored (its flip
    criterion on the top layer, docs/method.md §5.5)."""
    flags = []
    for start, stop, pair in runs:
        plain, mirror = pair[False].top_soft, pair[True].top_soft
        if plain is None or mirror is None:
            flags.append(torch.zeros(stop - start, dtype=torch.bool))
        else:
            flags.append(flip_criterion(plain, mirror).cpu())
    return torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool)


def prepare_parts(
    loaded: LoadedGraph,
    part: str,
    records: Sequence[ImageRecord],
    *,
    progress: Progress = NULL_PROGRESS,
) -> PartsBench:
    """Features and graph inference (both orientations) of every test object showing ``part``.

    Raises:
        InputError: no test object shows the part.
    """
    tests = [r for r in records if part in r.visible_parts()]
    if not tests:
        raise InputError(
            f"no test image shows a visible {part!r}; check --split, --label and the part name"
        )
    statistics = loaded.mining_statistics()
    prepared = loaded.prepare_images(tests, statistics=statistics, progress=progress)
    kept = [tests[i] for i in prepared.kept]
    truth = torch.from_numpy(_crop_points(kept, part, loaded.input_size)).float()
    started = time.perf_counter()
    runs = _infer_tests(loaded, prepared.features, progress)
    peaks = loaded.filter_peaks()
    return PartsBench(
        loaded=loaded,
        part=part,
        tests=kept,
        truth=truth,
        features=prepared.features,
        runs=runs,
        peaks=peaks,
        statistics=statistics,
        truth_left=faces_left(kept, loaded.input_size),
        graph_flip=_graph_readings(runs),
        seconds={"forward": prepared.forward_s, "graph": time.perf_counter() - started},
    )


def left_right_accuracy(predicted: torch.Tensor, truth: torch.Tensor, size: int) -> float:
    """Share of images where prediction and truth lie on the same side of the vertical midline."""
    same = (predicted[:, 0] >= size / 2.0) == (truth[:, 0] >= size / 2.0)
    return float(same.float().mean()) if len(same) else math.nan


@dataclass
class _ShotSide:
    """What the AOG and every baseline take from the shots."""

    aog: AndOrGraph
    filter_aog: AndOrGraph
    parts: np.ndarray  # [A, 2] crop px of each shot's part, original orientation
    hypercolumns: torch.Tensor  # [A, D] at each part, shots read plain (nn transfer)
    crops: torch.Tensor  # [A, D] whole-crop descriptors (facing prior)
    canonical: torch.Tensor  # [A, D] at each part, in its template's frame (appearance check)
    canonical_xy: torch.Tensor  # [A, 2] each part in its template's frame (the shot prior)
    frames: torch.Tensor  # [A] facing of each template's frame: 1 left, 0 right, NaN unknown
    anchored: dict[int, ExplanatoryGraph] | None = None  # per template (settings.anchor)


def _shot_side(
    bench: PartsBench, store: GraphStore, shots: ShotSet, settings: SelectionSettings
) -> _ShotSide:
    """Build the AOG (in memory) and the baselines' models from the shots."""
    loaded, size = bench.loaded, bench.size
    aog = build_aog(store, loaded, shots, settings=settings, write=False).aog
    shot_records = [shot.record for shot in shots.shots]
    shot_features = loaded.prepare_images(shot_records, statistics=bench.statistics).features
    parts = np.stack(
        [
            to_crop_coords(
                np.array([s.x, s.y]), s.record.box or full_box(load_image(s.record.path)), size
            )
            for s in shots.shots
        ]
    )
    templates = np.array([s.template for s in shots.shots])
    shot_run = baselines.filter_run(
        shot_features, 0, len(shot_records), mirrored=False, reference=bench.peaks
    )
    filter_aog = baselines.build_filter_aog(
        shot_run,
        parts,
        templates,
        bench.features.layers,
        model_id=loaded.model_id,
        part=shots.part,
        size=size,
        settings=settings,
    )
    flipped_of = {t.index: t.flipped for t in aog.templates}
    flipped = [flipped_of[s.template] for s in shots.shots]
    anchored: dict[int, ExplanatoryGraph] | None = None
    if settings.anchor:
        graphs = anchored_graphs(loaded.graph, shot_features, flipped)
        anchored = {}
        for shot, graph in zip(shots.shots, graphs, strict=True):
            anchored.setdefault(shot.template, graph)  # a template's first shot anchors it
    return _ShotSide(
        aog=aog,
        filter_aog=filter_aog,
        parts=parts,
        hypercolumns=descriptors.shot_descriptors(shot_features, parts, size=size),
        crops=descriptors.crop_descriptors(shot_features, 0, len(shot_records), mirrored=False),
        canonical=descriptors.canonical_descriptors(shot_features, parts, flipped, size=size),
        canonical_xy=canonical_positions(parts, flipped, size),
        frames=canonical_facing(faces_left(shot_records, size), torch.tensor(flipped)),
        anchored=anchored,
    )


Prediction = tuple[torch.Tensor, torch.Tensor | None]  # [n, 2] xy, [n] read mirrored or None


def _aog_and_controls(
    bench: PartsBench,
    side: _ShotSide,
    controls: ControlSettings,
    chunk: tuple[int, int, dict[bool, GraphRun]],
) -> dict[str, Prediction]:
    """The AOG and its graph-ablation controls on one chunk, on the same similarity maps."""
    start, stop, runs = chunk
    aog, features = side.aog, bench.features
    sims = reading_similarities(aog, side.canonical, features, start, stop)
    inputs = None
    if side.anchored is not None:
        layers = bench.loaded.layer_names
        inputs = anchored_inputs(aog, layers, side.anchored, features, start, stop)
    if aog.settings.orientation == "appearance":
        votes = appearance_votes(
            aog,
            bench.loaded.layer_names,
            runs,
            side.canonical,
            features,
            start,
            stop,
            similarity=sims,
            inputs=inputs,
        )
    else:
        votes = votes_from_runs(aog, bench.loaded.layer_names, runs, inputs=inputs)
    out: dict[str, Prediction] = {"aog": (votes.xy, votes.flipped)}
    out.update(
        control_predictions(
            sims,
            aog.settings.appearance_power,
            side.canonical_xy,
            size=bench.size,
            settings=controls,
        )
    )
    return out


def _predict(
    bench: PartsBench, side: _ShotSide, controls: ControlSettings
) -> dict[str, Prediction]:
    """Per method ``[n, 2]`` predictions on every test object (and, for the AOG and the
    controls, which reading each object was read in)."""
    chunks: list[dict[str, Prediction]] = []
    features, size = bench.features, bench.size
    for start, stop, runs in bench.runs:
        row = _aog_and_controls(bench, side, controls, (start, stop, runs))
        row["raw_filters"] = (
            baselines.filter_votes(side.filter_aog, features, start, stop, bench.peaks).xy,
            None,
        )
        row["nn_transfer"] = (
            baselines.nn_transfer(side.hypercolumns, features, start, stop, size=size),
            None,
        )
        row["facing_prior"] = (
            baselines.facing_prior(side.crops, side.parts, features, start, stop, size=size),
            None,
        )
        chunks.append(row)
    out: dict[str, Prediction] = {}
    for name in chunks[0]:
        readings = [chunk[name][1] for chunk in chunks]
        out[name] = (
            torch.cat([chunk[name][0] for chunk in chunks]),
            None if readings[0] is None else torch.cat([r for r in readings if r is not None]),
        )
    return out


def _report(
    bench: PartsBench,
    shots: ShotSet,
    side: _ShotSide,
    predicted: dict[str, Prediction],
    keep: torch.Tensor,
    seconds: dict[str, float],
    controls: ControlSettings,
) -> PartsReport:
    """Errors of every method (and the references) on the test objects that are not shots."""
    size = bench.size
    truth = bench.truth[keep]
    n = int(keep.sum())
    xy = {name: p[keep] for name, (p, _) in predicted.items()}
    xy["static_prior"] = baselines.static_prior(side.parts, n)
    xy["oracle_facing_prior"] = baselines.oracle_facing_prior(side.parts, truth, size=size)
    diagonal = size * math.sqrt(2.0)
    error = {name: ((p - truth).norm(dim=1) / diagonal) for name, p in xy.items()}
    kept = [r for r, k in zip(bench.tests, keep.tolist(), strict=True) if k]
    per_image = [
        {
            "path": str(record.path),
            "truth": truth[i].tolist(),
            **{name: {"xy": xy[name][i].tolist(), "error": float(error[name][i])} for name in xy},
        }
        for i, record in enumerate(kept)
    ]
    readings = {name: r[keep] for name, (_, r) in predicted.items() if r is not None}
    readings["graph"] = bench.graph_flip[keep]
    sweep_names = [name for name in xy if name.startswith("shot_prior_sigma=")]
    return PartsReport(
        model_id=bench.loaded.model_id,
        part=shots.part,
        n_test=n,
        n_shots=len(shots.shots),
        aog=float(error["aog"].mean()),
        baselines={name: float(error[name].mean()) for name in baselines.BASELINES},
        per_image=per_image,
        templates=side.aog.summary()["templates"],
        seconds=seconds,
        references={name: float(error[name].mean()) for name in baselines.REFERENCES},
        left_right={name: left_right_accuracy(p, truth, size) for name, p in xy.items()},
        shots=[str(shot.record.path) for shot in shots.shots],
        controls=controls,
        sweep={name: float(error[name].mean()) for name in sweep_names},
        frames=side.frames.tolist(),
        readings=readings,
        truth_left=bench.truth_left[keep],
    )


def score_shots(
    bench: PartsBench,
    store: GraphStore,
    shots: ShotSet,
    *,
    settings: SelectionSettings | None = None,
    controls: ControlSettings | None = None,
) -> PartsReport:
    """Build the AOG and the baselines from ``shots`` and score them on the bench's objects
    (``controls``: σ of the shot-prior control, and a dev sweep)."""
    settings = settings or SelectionSettings()
    controls = controls or ControlSettings()
    if shots.part != bench.part:
        raise InputError(f"the shots annotate {shots.part!r}, the benchmark {bench.part!r}")
    shot_paths = {shot.record.path.resolve() for shot in shots.shots}
    keep = torch.tensor([r.path.resolve() not in shot_paths for r in bench.tests])
    if not bool(keep.any()):
        raise InputError("every test object is a shot image; test on another split")
    seconds = dict(bench.seconds)
    started = time.perf_counter()
    side = _shot_side(bench, store, shots, settings)
    seconds["build"] = time.perf_counter() - started
    started = time.perf_counter()
    predicted = _predict(bench, side, controls)
    seconds["locate"] = time.perf_counter() - started
    return _report(bench, shots, side, predicted, keep, seconds, controls)


def evaluate_parts(
    store: GraphStore,
    loaded: LoadedGraph,
    shots: ShotSet,
    records: Sequence[ImageRecord],
    *,
    settings: SelectionSettings | None = None,
    controls: ControlSettings | None = None,
    progress: Progress = NULL_PROGRESS,
) -> PartsReport:
    """Build the AOG from ``shots`` and score it and the baselines on ``records``.

    Args:
        store: the store with the mined model (read only).
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`).
        shots: 1-3 annotated training images of the part.
        records: test objects with part keypoints; those without the part visible and the shot
            images themselves are left out.
        settings: AOG selection parameters.
        controls: σ of the shot-prior control (and a dev sweep).
        progress: progress bars.

    Raises:
        InputError: no test object shows the part.
    """
    tests = objects_with_part(records, shots)
    if not tests:
        raise InputError(
            f"no test image shows a visible {shots.part!r} (shot images excluded); "
            "check --split, --label and the part name"
        )
    bench = prepare_parts(loaded, shots.part, tests, progress=progress)
    return score_shots(bench, store, shots, settings=settings, controls=controls)


def draw_shots(train: Sequence[ImageRecord], part: str, n_shots: int, seed: int) -> ShotSet:
    """``n_shots`` distinct training images showing ``part``, drawn at random with ``seed``
    (each its own template)."""
    shown = [r for r in train if part in r.visible_parts()]
    if len(shown) < n_shots:
        raise InputError(
            f"only {len(shown)} training images show {part!r}; need {n_shots} per draw"
        )
    picks = np.random.default_rng(seed).choice(len(shown), size=n_shots, replace=False)
    chosen = [shown[int(i)] for i in picks]
    return ShotSet(
        part=part,
        shots=tuple(
            Shot(record=r, x=r.parts[part].x, y=r.parts[part].y, template=t)
            for t, r in enumerate(chosen)
        ),
        source=f"random draw, seed {seed}",
    )


def _summarise(values: Sequence[float], left_right: Sequence[float]) -> dict[str, float]:
    """Mean, sd, min, max of one method's errors over draws, and its mean left/right accuracy."""
    return {
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "left_right": float(np.mean(left_right)),
    }


def _method_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method (the AOG, every baseline, every reference) its summary over the draws."""
    summary: dict[str, dict[str, Any]] = {}
    for name in ("aog", *baselines.BASELINES, *baselines.REFERENCES):
        values = [
            r["aog"] if name == "aog" else r["baselines"].get(name, r["references"].get(name))
            for r in rows
        ]
        row: dict[str, Any] = _summarise(
            [math.nan if v is None else v for v in values],
            [r["left_right_accuracy"][name] for r in rows],
        )
        row["reference_only"] = name in baselines.REFERENCES
        summary[name] = row
    return summary


def _nanmean(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN (NaN when none is)."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _shots_frame(shots: Sequence[float]) -> GraphFrame:
    """The frame most of the shots' templates were read in (their canonical facings)."""
    known = [f for f in shots if not math.isnan(f)]
    share = float(np.mean(known)) if known else math.nan
    return GraphFrame(majority_facing(shots), max(share, 1.0 - share), len(known))


def _mirror_summary(draws: Sequence[PartsReport], frame: GraphFrame | None) -> dict[str, Any]:
    """How often each reading implies the annotated facing. The frame's facing comes from the
    graph's reading of the training split (``frame``); where that is missing or splits evenly,
    from every draw's shots; ``sign_free`` is max(a, 1 - a) of the graph's reading, whatever the
    frame (what a frame read off the test truth would give)."""
    shots = [f for d in draws for f in d.frames]
    source = "training split"
    if frame is None or math.isnan(frame.faces_left):
        source, frame = "shots", _shots_frame(shots)
    if math.isnan(frame.faces_left):
        source = "none (the readings split evenly)"
    in_frame = [f == frame.faces_left for f in shots if not math.isnan(f)]
    per_draw = [d.mirror_choice(frame.faces_left) for d in draws]
    names = list(per_draw[0]) if per_draw else []
    raw = _nanmean([d.mirror_choice(1.0).get("graph", math.nan) for d in draws])
    return {
        "frame_source": source,
        "frame_faces_left": frame.faces_left,
        "frame_agreement": frame.agreement,
        "frame_images": frame.n_images,
        "shots_in_frame": (
            float(np.mean(in_frame)) if in_frame and not math.isnan(frame.faces_left) else math.nan
        ),
        "accuracy": {name: _nanmean([row[name] for row in per_draw]) for name in names},
        "graph_sign_free": max(raw, 1.0 - raw) if not math.isnan(raw) else math.nan,
        "n_known": int((~draws[0].truth_left.isnan()).sum()) if draws else 0,
    }


@dataclass
class DrawsReport:
    """Part localisation over several seeded shot draws: per draw and mean ± sd per method."""

    model_id: str
    part: str
    seed: int
    draws: list[PartsReport]
    frame: GraphFrame | None = None  # the graph's frame from the training split

    def to_dict(self, *, details: bool = False) -> dict[str, Any]:
        """``{summary{method: {mean, sd, left_right}}, per_draw[...], best_baseline, ratio,
        graph_contribution, mirror_choice, shot_prior_sweep}``."""
        rows = [d.to_dict(details=details) for d in self.draws]
        summary = _method_summary(rows)
        best = min(baselines.BASELINES, key=lambda name: summary[name]["mean"])
        best_mean = summary[best]["mean"]
        contribution, best_control = graph_contribution(
            summary["aog"]["mean"], {name: summary[name]["mean"] for name in CONTROLS}
        )
        sweep = sorted({name for r in rows for name in r["shot_prior_sweep"]})
        return {
            "model_id": self.model_id,
            "part": self.part,
            "seed": self.seed,
            "n_draws": len(rows),
            "draw_seeds": [self.seed + d for d in range(len(rows))],
            "n_test": rows[0]["n_test"] if rows else 0,
            "summary": summary,
            "best_baseline": best,
            "aog_over_best_baseline": summary["aog"]["mean"] / best_mean
            if best_mean > 0
            else math.nan,
            "graph_contribution": contribution,
            "best_control": best_control,
            "contribution_verdict": contribution_verdict(contribution, best_control),
            "shot_prior_sigma": self.draws[0].controls.sigma if self.draws else math.nan,
            "shot_prior_sweep": {
                name: _summarise(
                    [r["shot_prior_sweep"][name] for r in rows],
                    [r["left_right_accuracy"][name] for r in rows],
                )
                for name in sweep
            },
            "mirror_choice": _mirror_summary(self.draws, self.frame),
            "per_draw": rows,
        }


def evaluate_parts_draws(
    store: GraphStore,
    loaded: LoadedGraph,
    part: str,
    train: Sequence[ImageRecord],
    tests: Sequence[ImageRecord],
    *,
    draws: int,
    seed: int,
    n_shots: int = 3,
    settings: SelectionSettings | None = None,
    controls: ControlSettings | None = None,
    progress: Progress = NULL_PROGRESS,
) -> DrawsReport:
    """Score ``draws`` random shot sets (draw ``d`` uses seed ``seed + d``) on the same tests
    (``controls``: σ of the shot-prior control, and for dev runs a sweep of it)."""
    if draws < 1:
        raise InputError(f"--draws {draws}: give 1 or more")
    train_paths = {r.path.resolve() for r in train}
    bench = prepare_parts(
        loaded, part, [r for r in tests if r.path.resolve() not in train_paths], progress=progress
    )
    reports = []
    with progress.task(f"{draws} shot draws", draws) as bar:
        for d in range(draws):
            shots = draw_shots(train, part, n_shots, seed + d)
            reports.append(score_shots(bench, store, shots, settings=settings, controls=controls))
            bar.advance()
    return DrawsReport(loaded.model_id, part, seed, reports, graph_frame(loaded, train))


__all__ = [
    "DrawsReport",
    "PartsBench",
    "PartsReport",
    "draw_shots",
    "evaluate_parts",
    "evaluate_parts_draws",
    "left_right_accuracy",
    "objects_with_part",
    "prepare_parts",
    "score_shots",
]
