"""Compare two stored graphs on a shared image set: matches per layer pair, parts, statistics.

Both graphs are read back from the store and their CNNs re-loaded from the recorded sources; both
are inferred on the same images (those they were mined on, or new ones), positions are brought
into object-box units (:mod:`queries.compare.frames`), and every layer of A is matched against
every layer of B (:mod:`queries.compare.similarity`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.records import ImageRecord
from miner.features import FeatureSet
from queries.compare.frames import iter_in_box_units, landmarks_in_box_units, record_boxes
from queries.compare.parts import part_rows
from queries.compare.similarity import TopFirings, match_candidates, top_similarity_candidates
from queries.compare.statistics import graph_statistics
from queries.compare.store import pattern_ids
from queries.loaded import LoadedGraph
from queries.streaming import RunningTopK, StreamedInstability


@dataclass(frozen=True)
class CompareSettings:
    """How patterns are matched. Distances are in object-box units (fractions of the diagonal).

    Attributes:
        tolerance: ``t``, positional tolerance of the agreement term ``exp(-d^2 / 2t^2)``.
        top_k: images per pattern that count as firings; capped at half the images so that
            co-firing still means something on small image sets.
        threshold: least similarity of a match (similarity is in ``[0, 1]``).
        candidates: counterparts kept per pattern while matching.
        stable_threshold: most part instability of a pattern that counts as stable for the part.
        n_best: per part, how many of each model's most stable patterns are averaged.
        layers_a, layers_b: compare only these layers (default: all).
        block: patterns per side per block of the similarity computation.
        work_elements: firing pairs visited per step of it (about 60 bytes each).
    """

    tolerance: float = 0.1
    top_k: int = 20
    threshold: float = 0.5
    candidates: int = 8
    stable_threshold: float = 0.05
    n_best: int = 20
    layers_a: tuple[str, ...] | None = None
    layers_b: tuple[str, ...] | None = None
    block: int = 2048
    work_elements: int = 1 << 18

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        out = asdict(self)
        for key in ("layers_a", "layers_b"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out


@dataclass
class CompareReport:
    """What a comparison found (see :meth:`to_dict` for the JSON layout).

    ``layer_pairs`` rows: ``layer_a, layer_b, patterns_a, patterns_b, matched, unique_a,
    unique_b, mean_similarity`` (of the matches) and ``best_similarity_a`` (mean over A's
    patterns of their best similarity in that B layer, 0 where none fires with any).
    ``per_layer_a`` / ``per_layer_b`` rows: ``layer, patterns, matched`` (in some compared layer
    of the other model) and ``unique``. ``parts`` rows: see :func:`queries.compare.parts.part_rows`.
    ``matches``: one row per match, ``pattern_a, pattern_b, layer_a, layer_b, idx_a, idx_b,
    similarity``.
    """

    model_a: str
    model_b: str
    n_images: int
    top_k_used: int
    settings: CompareSettings
    layers_a: list[str]
    layers_b: list[str]
    layer_pairs: list[dict[str, Any]]
    per_layer_a: list[dict[str, Any]]
    per_layer_b: list[dict[str, Any]]
    statistics_a: dict[str, Any]
    statistics_b: dict[str, Any]
    parts: list[dict[str, Any]]
    matches: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def matched_a(self) -> int:
        """A patterns (compared layers) with a match in some layer of B."""
        return sum(int(row["matched"]) for row in self.per_layer_a)

    @property
    def matched_b(self) -> int:
        """B patterns (compared layers) with a match in some layer of A."""
        return sum(int(row["matched"]) for row in self.per_layer_b)

    def to_dict(self, *, include_matches: bool = False) -> dict[str, Any]:
        """JSON-ready: settings, per layer pair and per layer counts, parts, statistics."""
        out: dict[str, Any] = {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "n_images": self.n_images,
            "top_k_used": self.top_k_used,
            "settings": self.settings.to_dict(),
            "layers_a": self.layers_a,
            "layers_b": self.layers_b,
            "layer_pairs": self.layer_pairs,
            "per_layer_a": self.per_layer_a,
            "per_layer_b": self.per_layer_b,
            "patterns_a": sum(int(r["patterns"]) for r in self.per_layer_a),
            "patterns_b": sum(int(r["patterns"]) for r in self.per_layer_b),
            "matched_a": self.matched_a,
            "matched_b": self.matched_b,
            "n_matches": len(self.matches),
            "parts": self.parts,
            "statistics": {"a": self.statistics_a, "b": self.statistics_b},
            "timings": self.timings,
        }
        if include_matches:
            out["matches"] = self.matches.to_dict(orient="records")
        return out


def _chosen(loaded: LoadedGraph, wanted: Sequence[str] | None, side: str) -> list[int]:
    names = loaded.layer_names
    if wanted is None:
        return list(range(len(names)))
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        raise InputError(
            f"model {side} ({loaded.model_id}) has no layer {', '.join(unknown) or '(none given)'}"
            f"; its layers are {', '.join(names)}"
        )
    return [names.index(name) for name in wanted]


def _aligned(ids_a: list[str], ids_b: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Indices into A's and B's images of the images both hold, in A's order."""
    if ids_a == ids_b:
        every = np.arange(len(ids_a))
        return every, every
    first_b: dict[str, int] = {}
    for index, image_id in enumerate(ids_b):
        first_b.setdefault(image_id, index)
    seen: set[str] = set()
    keep_a, keep_b = [], []
    for index, image_id in enumerate(ids_a):
        if image_id in first_b and image_id not in seen:
            seen.add(image_id)
            keep_a.append(index)
            keep_b.append(first_b[image_id])
    return np.asarray(keep_a, dtype=np.int64), np.asarray(keep_b, dtype=np.int64)


@dataclass
class _Side:
    """One model of a comparison: its graph, ids, chosen layers, features and what inference
    kept of them."""

    loaded: LoadedGraph
    ids: dict[str, Any]  # layer -> pattern ids by index
    chosen: list[int]
    features: FeatureSet
    keep: np.ndarray  # feature-set index of every shared image
    streamed: _Streamed | None = None
    matched: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [P] bool

    @property
    def names(self) -> list[str]:
        """The model's layer names."""
        return self.loaded.layer_names


def _sides(
    store: GraphStore,
    loaded_a: LoadedGraph,
    loaded_b: LoadedGraph,
    records: list[ImageRecord],
    settings: CompareSettings,
    progress: Progress,
) -> tuple[_Side, _Side]:
    """Both models' features on the shared images, aligned to the images both could read
    (the same model compared with itself is read once)."""
    same = loaded_b.model_id == loaded_a.model_id
    chosen_a = _chosen(loaded_a, settings.layers_a, "A")
    chosen_b = _chosen(loaded_b, settings.layers_b, "B")
    ids_a = pattern_ids(store, loaded_a.model_id)
    ids_b = ids_a if same else pattern_ids(store, loaded_b.model_id)
    if not records:
        raise InputError("no images to compare on: give an image folder with images of the class")
    features_a = loaded_a.extract(records, progress=progress)
    features_b = features_a if same else loaded_b.extract(records, progress=progress)
    keep_a, keep_b = _aligned(features_a.image_ids, features_b.image_ids)
    if len(keep_a) < 2:
        raise InputError(
            f"only {len(keep_a)} image(s) are usable by both models: give at least two images "
            "whose object boxes are at least 50 px"
        )
    return (
        _Side(loaded_a, ids_a, chosen_a, features_a, keep_a),
        _Side(loaded_b, ids_b, chosen_b, features_b, keep_b),
    )


def _match_pair(
    a: _Side, b: _Side, i: int, j: int, settings: CompareSettings, progress: Progress
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Match layer ``i`` of A with layer ``j`` of B: the layer-pair row and the matches."""
    assert a.streamed is not None and b.streamed is not None
    found = top_similarity_candidates(
        a.streamed.firings[i],
        b.streamed.firings[j],
        tolerance=settings.tolerance,
        candidates=settings.candidates,
        block=settings.block,
        work_elements=settings.work_elements,
        device=a.loaded.device,
        progress=progress,
        description=f"matching {a.names[i]} / {b.names[j]}",
    )
    ia, ib, similarity = match_candidates(found, settings.threshold)
    a.matched[i][ia] = True
    b.matched[j][ib] = True
    p_a, p_b = a.streamed.firings[i].num_patterns, b.streamed.firings[j].num_patterns
    row = {
        "layer_a": a.names[i],
        "layer_b": b.names[j],
        "patterns_a": p_a,
        "patterns_b": p_b,
        "matched": int(ia.numel()),
        "unique_a": p_a - int(ia.numel()),
        "unique_b": p_b - int(ia.numel()),
        "mean_similarity": float(similarity.mean()) if ia.numel() else float("nan"),
        "best_similarity_a": float(found.best_a.clamp_min(0).mean()) if p_a else 0.0,
    }
    matches = pd.DataFrame(
        {
            "pattern_a": a.ids[a.names[i]][ia.numpy()],
            "pattern_b": b.ids[b.names[j]][ib.numpy()],
            "layer_a": a.names[i],
            "layer_b": b.names[j],
            "idx_a": ia.numpy(),
            "idx_b": ib.numpy(),
            "similarity": similarity.double().numpy(),
        }
    )
    return row, matches


def _match_layers(
    a: _Side, b: _Side, settings: CompareSettings, progress: Progress
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Every chosen layer of A against every chosen layer of B (marks the matched patterns)."""
    for side in (a, b):
        side.matched = {
            i: torch.zeros(side.loaded.graph.layers[i].num_patterns, dtype=torch.bool)
            for i in side.chosen
        }
    pair_rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    for i in a.chosen:
        for j in b.chosen:
            row, matches = _match_pair(a, b, i, j, settings, progress)
            pair_rows.append(row)
            frames.append(matches)
    return pair_rows, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _part_table(
    a: _Side, b: _Side, part_names: list[str], settings: CompareSettings
) -> list[dict[str, Any]]:
    """Per part: each model's stable patterns and how many of them found a counterpart."""
    if not part_names:
        return []
    assert a.streamed is not None and b.streamed is not None
    return part_rows(
        part_names,
        _part_instability(a.streamed, a.chosen),
        _part_instability(b.streamed, b.chosen),
        torch.cat([a.matched[i] for i in a.chosen]),
        torch.cat([b.matched[j] for j in b.chosen]),
        stable_threshold=settings.stable_threshold,
        n_best=settings.n_best,
    )


def _infer_sides(a: _Side, b: _Side, top_k: int, progress: Progress) -> list[str]:
    """Stream both models over the shared images (a model compared with itself once); returns
    the names of the parts whose keypoints the shared images show."""
    kept = [a.features.records[i] for i in a.keep]
    part_names = sorted({name for record in kept for name in record.visible_parts()})
    landmarks = landmarks_in_box_units(kept, part_names, record_boxes(kept))
    a.streamed = _stream(a, top_k, landmarks, a.loaded.device, progress)
    same = b.loaded.model_id == a.loaded.model_id
    b.streamed = a.streamed if same else _stream(b, top_k, landmarks, a.loaded.device, progress)
    return part_names


def compare_models(
    store: GraphStore,
    loaded_a: LoadedGraph,
    loaded_b: LoadedGraph,
    records: Sequence[ImageRecord],
    *,
    settings: CompareSettings | None = None,
    progress: Progress = NULL_PROGRESS,
) -> CompareReport:
    """Match the patterns of two stored models by where and when they fire on ``records``.

    Args:
        store: holds both models (read access is enough; see
            :func:`queries.compare.store.write_matches` to store the result).
        loaded_a, loaded_b: the models (:meth:`queries.loaded.LoadedGraph.open`; the same
            model twice compares a graph with itself). The computations run on A's device;
            the features come from ``cache_dir/features``, shared with ``explgraph mine``, so
            the images a model was mined on cost no forward pass.
        records: the shared images; part keypoints, where present, give the per-part table.
        settings: matching parameters (defaults: :class:`CompareSettings`).
        progress: progress bars.

    Raises:
        InputError: no images both models could read, or an unknown layer name.
    """
    settings = settings or CompareSettings()
    started = time.perf_counter()
    a, b = _sides(store, loaded_a, loaded_b, list(records), settings, progress)
    timings = {"features": time.perf_counter() - started}
    tick = time.perf_counter()
    n_images = len(a.keep)
    k = min(settings.top_k, max(1, n_images // 2))
    part_names = _infer_sides(a, b, k, progress)
    timings["inference"] = time.perf_counter() - tick
    tick = time.perf_counter()
    pair_rows, matches = _match_layers(a, b, settings, progress)
    timings["matching"] = time.perf_counter() - tick
    tick = time.perf_counter()
    part_table = _part_table(a, b, part_names, settings)
    timings["parts"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - started
    return CompareReport(
        model_a=a.loaded.model_id,
        model_b=b.loaded.model_id,
        n_images=n_images,
        top_k_used=k,
        settings=settings,
        layers_a=[a.names[i] for i in a.chosen],
        layers_b=[b.names[j] for j in b.chosen],
        layer_pairs=pair_rows,
        per_layer_a=_per_layer(a.names, a.matched),
        per_layer_b=_per_layer(b.names, b.matched),
        statistics_a=graph_statistics(a.loaded.graph, a.loaded.input_size),
        statistics_b=graph_statistics(b.loaded.graph, b.loaded.input_size),
        parts=part_table,
        matches=matches,
        timings=timings,
    )


def _per_layer(names: list[str], matched: dict[int, torch.Tensor]) -> list[dict[str, Any]]:
    """Per compared layer: patterns, those matched in some layer of the other model, the rest."""
    return [
        {
            "layer": names[i],
            "patterns": int(flags.numel()),
            "matched": int(flags.sum()),
            "unique": int((~flags).sum()),
        }
        for i, flags in matched.items()
    ]


@dataclass
class _Streamed:
    """What compare keeps of one model's inference, per chosen layer: each pattern's top-k
    firings and its per-part top-k (``O(k·P)`` memory whatever the number of images)."""

    firings: dict[int, TopFirings]
    parts: dict[int, StreamedInstability]


def _stream(
    side: _Side,
    top_k: int,
    parts: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    progress: Progress,
) -> _Streamed:
    """Infer one model chunk by chunk and keep only the top-k of every chosen layer.

    ``side.keep[r]`` is the feature-set index of shared image ``r``; images are numbered by
    ``r`` (the order both models share) and the others are skipped. ``parts``: landmarks
    ``[R, J, 2]`` in box units and their visibility ``[R, J]``, indexed by ``r``.
    """
    landmarks, visible = parts
    features, keep, chosen = side.features, side.keep, side.chosen
    slot = torch.full((features.num_images,), -1, dtype=torch.long)
    slot[torch.as_tensor(keep, dtype=torch.long)] = torch.arange(len(keep))
    running = {i: RunningTopK(top_k) for i in chosen}
    instability = {i: StreamedInstability(int(landmarks.shape[1]), top_k) for i in chosen}
    for start, stop, layers in iter_in_box_units(
        side.loaded.graph,
        features,
        input_size=side.loaded.input_size,
        boxes=record_boxes(features.records),
        device=device,
        progress=progress,
        description=f"inferring {side.loaded.model_id}",
    ):
        rows = (slot[start:stop] >= 0).nonzero().squeeze(1)
        shared = slot[start:stop][rows]
        if not rows.numel():
            continue
        for i in chosen:
            positions, scores = layers[i][0][rows], layers[i][1][rows]
            image = shared[:, None].expand(scores.shape)
            running[i].add(scores.float().clamp_min(0.0), image, positions)
            instability[i].add(positions, scores, landmarks[shared], visible[shared])
    firings = {}
    for i in chosen:
        top = running[i]
        assert top.scores is not None  # at least two shared images were checked before
        firings[i] = TopFirings.from_top(len(keep), top.scores, *top.payloads)
    return _Streamed(firings=firings, parts=instability)


def _part_instability(streamed: _Streamed, chosen: list[int]) -> torch.Tensor:
    """``[J, P]`` instability of every chosen pattern for every part, like
    :func:`queries.compare.parts.part_instability` on all images at once (box units)."""
    per_layer = []
    for i in chosen:
        n_patterns = streamed.firings[i].num_patterns
        rows = streamed.parts[i].per_landmark(diagonal=1.0)
        per_layer.append(
            [row if row is not None else torch.full((n_patterns,), float("nan")) for row in rows]
        )
    return torch.stack([torch.cat(columns) for columns in zip(*per_layer, strict=True)])


__all__ = ["CompareReport", "CompareSettings", "compare_models"]
