"""Building a part's And-Or graph from 1-3 annotated images (docs/method.md §8).

For each template (one per annotated pose):

1. The graph is inferred on the annotated image(s), each read in the orientation the graph
   explains better (shots need not be mined images, and FIRES keeps only an image's top 20
   patterns per layer plus each pattern's top 20 images, too few to choose from on a large
   set). Where the shot *was* mined, its stored FIRES rows are retrieved too; those that agree
   with this reading (within the kernel sigma) supply the position and score (``from_store``
   in the cuts). Mining may have read the image in the other orientation, so disagreeing rows
   are left out rather than mixed in.
2. Candidates: patterns that fire confidently (score ≥ ``min_confidence`` × their mean training
   score) within ``radius`` × input size of the part; at most ``max_candidates`` per layer.
3. Their properties (sigma, mean score) and every stored firing on other images come from the
   store by Cypher; the offset ``Delta = part − p̂`` is checked over the template's annotations
   and over those firing images (:mod:`queries.aog.select`).
4. Per layer the weights are cut at their knee; kept weights are normalised to sum to 1 per
   template, so templates compete on equal terms. PARENT edges among the kept patterns are
   counted (structure the template inherits from the explanatory graph).

The result is written as Part / Template / HAS_TEMPLATE / USES.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.images import full_box, load_image, to_crop_coords
from miner.data.records import ImageRecord, image_content_id
from miner.graph import ExplanatoryGraph
from queries.aog import retrieve
from queries.aog.descriptors import canonical_descriptors
from queries.aog.model import AndOrGraph, TemplateInfo, write_aog
from queries.aog.runtime import run_graph
from queries.aog.select import (
    SelectionSettings,
    firing_spread,
    score_candidates,
    select_patterns,
)
from queries.aog.shots import ShotSet
from queries.loaded import LoadedGraph
from queries.normalisation import TrainingNormalised

# the USES columns an AOG keeps: what voting needs, then what `aog show` reports
USES_KEPT = ["template", "pattern_id", "layer", "idx", "dx", "dy", "weight"]
USES_KEPT += ["confidence", "spread", "fire_images"]


@dataclass
class BuildReport:
    """The AOG and where the time went."""

    aog: AndOrGraph
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {**self.aog.summary(), "seconds": self.seconds}


@dataclass
class _ShotView:
    """One annotated image as the graph saw it."""

    image_id: str
    path: str
    part: np.ndarray  # [2] crop px, canonical orientation
    flipped: bool
    pixels: list[torch.Tensor]  # per layer [P, 2]
    confidence: list[torch.Tensor]  # per layer [P]
    box: tuple[float, float, float, float]
    neighbour: float = float("inf")  # crop px to the nearest other annotated part (part_radius)


def _shot_views(
    loaded: LoadedGraph,
    shots: ShotSet,
    *,
    statistics: list[np.ndarray] | None,
    progress: Progress,
) -> tuple[list[_ShotView], float, float, TrainingNormalised]:
    """Each shot as the graph reads it (the orientation it explains better), the seconds of the
    CNN and of the graph, and the shots' features."""
    size = loaded.input_size
    records = [shot.record for shot in shots.shots]
    prepared = loaded.prepare_images(records, statistics=statistics, progress=progress)
    if prepared.skipped:
        index, reason = next(iter(prepared.skipped.items()))
        raise InputError(f"shot image {records[index].path} cannot be used ({reason}); replace it")
    run = run_graph(
        loaded.graph, prepared.features, 0, len(records), orientation="auto", device=loaded.device
    )
    views = []
    for k, shot in enumerate(shots.shots):
        box = shot.record.box or full_box(load_image(shot.record.path))
        part = to_crop_coords(np.array([shot.x, shot.y]), box, size)
        neighbour = _nearest_other_part(shot.record, shots.part, part, box, size)
        flipped = bool(run.flipped[k])
        if flipped:
            part[0] = size - part[0]
        views.append(
            _ShotView(
                image_id=image_content_id(shot.record.path),
                path=str(shot.record.path.resolve()),
                part=part,
                flipped=flipped,
                pixels=[p[k] for p in run.pixels],
                confidence=[c[k] for c in run.confidence],
                box=box,
                neighbour=neighbour,
            )
        )
    return views, prepared.forward_s, run.seconds, prepared.features


def _nearest_other_part(
    record: ImageRecord,
    part: str,
    at: np.ndarray,
    box: tuple[float, float, float, float],
    size: int,
) -> float:
    """Crop px from the annotated part (``at``, original orientation) to the nearest other part
    annotated on the same image; infinite where there is none."""
    others = [kp for name, kp in record.visible_parts().items() if name != part]
    if not others:
        return float("inf")
    xy = to_crop_coords(np.array([[kp.x, kp.y] for kp in others], dtype=np.float64), box, size)
    return float(np.hypot(*(xy - at[None]).T).min())


def template_radius(views: list[_ShotView], settings: SelectionSettings, size: int) -> float:
    """Crop px within which a template's candidates must fire: ``radius`` x size, or with
    ``part_radius`` the shots' mean distance to the nearest other annotated part, clipped to
    [radius, max_radius] x size (a part's own region: small for a head beside a beak, large for
    a tail or wing; docs/faithfulness.md, change 2)."""
    fixed = settings.radius * size
    near = [v.neighbour for v in views if np.isfinite(v.neighbour)]
    if not settings.part_radius or not near:
        return fixed
    return float(np.clip(np.mean(near), fixed, max(fixed, settings.max_radius * size)))


def _store_candidates(
    fires: pd.DataFrame, view: _ShotView, layer: str, size: int, mean_score: np.ndarray
) -> pd.DataFrame:
    """The shot's stored firings of one layer, in the template's crop frame."""
    rows = fires[(fires["image_id"] == view.image_id) & (fires["layer"] == layer)]
    if len(rows) == 0:
        return pd.DataFrame({"idx": [], "px": [], "py": [], "confidence": []})
    crop = to_crop_coords(rows[["x", "y"]].to_numpy(np.float64), view.box, size)
    if view.flipped:
        crop[:, 0] = size - crop[:, 0]
    idx = rows["idx"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "idx": idx,
            "px": crop[:, 0],
            "py": crop[:, 1],
            "confidence": rows["score"].to_numpy(np.float64) / np.maximum(mean_score[idx], 1e-12),
        }
    )


def _layer_candidates(
    graph: ExplanatoryGraph,
    views: list[_ShotView],
    store_fires: pd.DataFrame,
    layer_index: int,
    settings: SelectionSettings,
    size: int,
) -> pd.DataFrame:
    """Candidates of one layer for one template: mean offset, confidence, annotation spread."""
    layer = graph.layers[layer_index]
    name = layer.geometry.name
    mean_score = layer.mean_score.numpy().astype(np.float64)
    deltas, confs, sources = [], [], []
    for view in views:
        px = view.pixels[layer_index].numpy().astype(np.float64)
        conf = view.confidence[layer_index].numpy().astype(np.float64)
        stored_rows = _store_candidates(store_fires, view, name, size, mean_score)
        from_store = np.zeros(len(px), dtype=bool)
        if len(stored_rows):
            # Mining may have read the shot in the other orientation than inference chose
            # now: only stored firings that agree with this reading are taken.
            idx = stored_rows["idx"].to_numpy(np.int64)
            xy = stored_rows[["px", "py"]].to_numpy()
            agree = np.hypot(*(xy - px[idx]).T) <= settings.kernel_sigma(size)
            idx, xy = idx[agree], xy[agree]
            px[idx] = xy
            conf[idx] = stored_rows["confidence"].to_numpy()[agree]
            from_store[idx] = True
        deltas.append(view.part[None, :] - px)
        confs.append(conf)
        sources.append(from_store)
    delta = np.stack(deltas)  # [A, P, 2]
    mean_delta = delta.mean(axis=0)
    confidence = np.stack(confs).mean(axis=0)
    near = np.hypot(mean_delta[:, 0], mean_delta[:, 1]) <= template_radius(views, settings, size)
    ok = near & (confidence >= settings.min_confidence)
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(-confidence[idx], kind="stable")][: settings.max_candidates]
    if len(views) >= 2:
        prior = ((delta[:, idx] - mean_delta[None, idx]) ** 2).sum(-1).mean(0)
    else:
        sigma_px = layer.sigma.numpy().astype(np.float64)[idx] * layer.geometry.stride
        prior = sigma_px**2
    return pd.DataFrame(
        {
            "layer": name,
            "layer_index": layer_index,
            "idx": idx,
            "dx": mean_delta[idx, 0],
            "dy": mean_delta[idx, 1],
            "confidence": confidence[idx],
            "prior_var": prior,
            "from_store": np.any(np.stack(sources), axis=0)[idx],
        }
    )


def _members(views: list[_ShotView], shots: ShotSet, template: int) -> list[_ShotView]:
    """The views of the shots of one template."""
    return [v for v, s in zip(views, shots.shots, strict=True) if s.template == template]


def _candidate_properties(store: GraphStore, model_id: str, every: pd.DataFrame) -> pd.DataFrame:
    """Pattern ids and properties of every candidate, one query per layer."""
    return pd.concat(
        [
            retrieve.pattern_rows(store, model_id, layer, sorted(set(rows["idx"].tolist()))).assign(
                layer=layer
            )
            for layer, rows in every.groupby("layer")
        ]
        or [pd.DataFrame(columns=["idx", "pattern_id", "sigma", "mean_score", "layer"])],
        ignore_index=True,
    ).astype({"idx": np.int64})


def _candidate_firings(
    store: GraphStore,
    loaded: LoadedGraph,
    props: pd.DataFrame,
    views: list[_ShotView],
    settings: SelectionSettings,
) -> pd.DataFrame:
    """Every stored firing of the candidates on images other than the shots, in crop pixels,
    weighted by the firing's capped confidence."""
    size = loaded.input_size
    ids = sorted(set(props["pattern_id"]))
    fires = retrieve.candidate_firings(store, loaded.model_id, ids)
    fires = fires[~fires["image_id"].isin({v.image_id for v in views})]
    fires = retrieve.to_crop(fires, loaded.mined_boxes(), size)
    means = props.set_index("pattern_id")["mean_score"]
    return fires.assign(
        key=fires["pattern_id"],
        image=fires["image_id"],
        weight=np.clip(
            fires["score"].to_numpy(np.float64)
            / np.maximum(means.reindex(fires["pattern_id"]).to_numpy(np.float64), 1e-12),
            0.0,
            settings.confidence_cap,
        ),
    )


def _select_template(
    template: int,
    candidates: pd.DataFrame,
    props: pd.DataFrame,
    fires: pd.DataFrame,
    members: list[_ShotView],
    settings: SelectionSettings,
    size: int,
) -> tuple[TemplateInfo, pd.DataFrame]:
    """One template's kept patterns (weights summing to 1) and its description."""
    cands = candidates.merge(props[["layer", "idx", "pattern_id"]], on=["layer", "idx"])
    cands["key"] = cands["pattern_id"]
    spread = firing_spread(
        cands,
        fires,
        input_size=size,
        min_cofiring=settings.min_cofiring,
        min_images=settings.min_fire_images,
    )
    cands = cands.merge(spread, on="key", how="left")
    scored = score_candidates(cands, settings, size)
    kept, cuts = select_patterns(scored, settings)
    for cut in cuts:
        layer_rows = scored[scored["layer"] == cut["layer"]]
        cut["from_store"] = int(layer_rows["from_store"].sum())
        cut["with_firing_images"] = int(layer_rows["fire_var"].notna().sum())
    total = float(kept["weight"].sum())
    kept = kept.assign(template=template, weight=kept["weight"] / total if total > 0 else 0.0)
    first = members[0]
    part = np.mean([v.part for v in members], axis=0)
    info = TemplateInfo(
        index=template,
        image_id=first.image_id,
        image_path=first.path,
        x=float(part[0]),
        y=float(part[1]),
        flipped=first.flipped,
        n_annotations=len(members),
        cuts=cuts,
    )
    return info, kept


def _appearance_descriptors(
    shot_features: TrainingNormalised,
    views: list[_ShotView],
    shots: ShotSet,
    infos: list[TemplateInfo],
    size: int,
) -> np.ndarray:
    """The shots' part appearance, for the appearance check at localisation: each shot's
    hypercolumn at its part, in its template's frame (as `evaluate parts` takes it)."""
    flipped_of = {info.index: info.flipped for info in infos}
    originals = np.stack(
        [
            np.array([size - v.part[0], v.part[1]]) if v.flipped else np.asarray(v.part)
            for v in views
        ]
    )
    return canonical_descriptors(
        shot_features,
        originals,
        [flipped_of[s.template] for s in shots.shots],
        size=size,
    ).numpy()


def _count_parent_links(store: GraphStore, infos: list[TemplateInfo], uses: pd.DataFrame) -> None:
    """Per template, the PARENT edges among its kept patterns (inherited structure)."""
    links = retrieve.parent_links(store, sorted(set(uses["pattern_id"])))
    for info in infos:
        mine = set(uses.loc[uses["template"] == info.index, "pattern_id"])
        info.n_parent_links = int((links["child"].isin(mine) & links["parent"].isin(mine)).sum())


def _template_candidates(
    store: GraphStore,
    loaded: LoadedGraph,
    views: list[_ShotView],
    shots: ShotSet,
    settings: SelectionSettings,
) -> tuple[dict[int, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Per template its candidates (every layer), the candidates' stored properties, and their
    stored firings on other images (steps 1-3 of the module docstring)."""
    size = loaded.input_size
    store_fires = retrieve.shot_firings(store, loaded.model_id, sorted({v.image_id for v in views}))
    templates = sorted({shot.template for shot in shots.shots})
    per_template = {
        t: pd.concat(
            [
                _layer_candidates(
                    loaded.graph, _members(views, shots, t), store_fires, i, settings, size
                )
                for i in range(len(loaded.graph.layers))
            ],
            ignore_index=True,
        )
        for t in templates
    }
    props = _candidate_properties(
        store, loaded.model_id, pd.concat(per_template.values(), ignore_index=True)
    )
    return per_template, props, _candidate_firings(store, loaded, props, views, settings)


def build_aog(
    store: GraphStore,
    loaded: LoadedGraph,
    shots: ShotSet,
    *,
    settings: SelectionSettings | None = None,
    write: bool = True,
    progress: Progress = NULL_PROGRESS,
) -> BuildReport:
    """Build (and by default store) the And-Or graph of ``shots.part`` for a mined model.

    Args:
        store: the store holding the model; opened read-write when ``write``.
        loaded: the mined model (:meth:`queries.loaded.LoadedGraph.open`); the mining
            statistics of its feature cache normalise the shots.
        shots: the annotated images (:func:`queries.aog.shots.read_shots`).
        settings: selection parameters (defaults: :class:`SelectionSettings`).
        write: write Part / Template / HAS_TEMPLATE / USES into the store.
        progress: progress bars.

    Raises:
        InputError: unusable shot images.
    """
    settings = settings or SelectionSettings()
    size = loaded.input_size
    started = time.perf_counter()
    statistics = loaded.mining_statistics()
    seconds = {"store": time.perf_counter() - started}
    views, seconds["forward"], seconds["graph"], shot_features = _shot_views(
        loaded, shots, statistics=statistics, progress=progress
    )
    started = time.perf_counter()
    per_template, props, fires = _template_candidates(store, loaded, views, shots, settings)
    seconds["store"] += time.perf_counter() - started
    chosen = [
        _select_template(t, frame, props, fires, _members(views, shots, t), settings, size)
        for t, frame in per_template.items()
    ]
    infos = [info for info, _ in chosen]
    uses = pd.concat([kept for _, kept in chosen], ignore_index=True)
    descriptors = _appearance_descriptors(shot_features, views, shots, infos, size)
    started = time.perf_counter()
    _count_parent_links(store, infos, uses)
    seconds["store"] += time.perf_counter() - started
    aog = AndOrGraph(
        model_id=loaded.model_id,
        part=shots.part,
        input_size=size,
        settings=settings,
        templates=infos,
        uses=uses[USES_KEPT].reset_index(drop=True),
        source=shots.source,
        normalisation=shot_features.normalisation,
        descriptors=descriptors,
    )
    if write:
        started = time.perf_counter()
        write_aog(store, aog)
        seconds["write"] = time.perf_counter() - started
    return BuildReport(aog=aog, seconds=seconds)


__all__ = ["BuildReport", "build_aog"]
