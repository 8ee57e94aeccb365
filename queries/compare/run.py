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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore import GraphStore
from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from queries.compare.frames import iter_in_box_units, landmarks_in_box_units, record_boxes
from queries.compare.parts import part_rows
from queries.compare.similarity import TopFirings, match_candidates, top_similarity_candidates
from queries.compare.statistics import graph_statistics
from queries.compare.store import pattern_ids
from queries.graphs import StoredGraph, load_graph, load_stored_model
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


def _compute_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _chosen(stored: StoredGraph, wanted: Sequence[str] | None, side: str) -> list[int]:
    names = stored.layer_names
    if wanted is None:
        return list(range(len(names)))
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        raise InputError(
            f"model {side} ({stored.model_id}) has no layer {', '.join(unknown) or '(none given)'}"
            f"; its layers are {', '.join(names)}"
        )
    return [names.index(name) for name in wanted]


def _features(
    stored: StoredGraph,
    records: Sequence[ImageRecord],
    cache_dir: Path,
    device: torch.device,
    progress: Progress,
) -> tuple[FeatureSet, int]:
    model = load_stored_model(stored)
    features = extract_features(
        model,
        records,
        stored.layer_names,
        cache_dir=cache_dir / "features",
        device=str(device),
        mirror=stored.graph.settings.use_flip,
        progress=progress,
    )
    return features, int(model.input_size)


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


def compare_models(
    store: GraphStore,
    model_a: str,
    model_b: str,
    records: Sequence[ImageRecord],
    *,
    cache_dir: Path,
    settings: CompareSettings | None = None,
    device: str = "auto",
    progress: Progress = NULL_PROGRESS,
) -> CompareReport:
    """Match the patterns of two stored models by where and when they fire on ``records``.

    Args:
        store: holds both models (read access is enough; see
            :func:`queries.compare.store.write_matches` to store the result).
        model_a, model_b: the model ids (the same id compares a graph with itself).
        records: the shared images; part keypoints, where present, give the per-part table.
        cache_dir: feature cache (``cache_dir/features``), shared with ``explgraph mine``, so
            the images a model was mined on cost no forward pass.
        settings: matching parameters (defaults: :class:`CompareSettings`).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        progress: progress bars.

    Raises:
        UnknownModel: a model id is not in the store.
        InputError: no images both models could read, or an unknown layer name.
    """
    settings = settings or CompareSettings()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    compute = _compute_device(device)
    stored_a = load_graph(store, model_a)
    stored_b = stored_a if model_b == model_a else load_graph(store, model_b)
    chosen_a = _chosen(stored_a, settings.layers_a, "A")
    chosen_b = _chosen(stored_b, settings.layers_b, "B")
    ids_a = pattern_ids(store, model_a)
    ids_b = ids_a if model_b == model_a else pattern_ids(store, model_b)
    records = list(records)
    if not records:
        raise InputError("no images to compare on: give an image folder with images of the class")

    features_a, size_a = _features(stored_a, records, cache_dir, compute, progress)
    if model_b == model_a:
        features_b, size_b = features_a, size_a
    else:
        features_b, size_b = _features(stored_b, records, cache_dir, compute, progress)
    keep_a, keep_b = _aligned(features_a.image_ids, features_b.image_ids)
    if len(keep_a) < 2:
        raise InputError(
            f"only {len(keep_a)} image(s) are usable by both models: give at least two images "
            "whose object boxes are at least 50 px"
        )
    timings["features"] = time.perf_counter() - started

    tick = time.perf_counter()
    n_images = len(keep_a)
    k = min(settings.top_k, max(1, n_images // 2))
    kept = [features_a.records[i] for i in keep_a]
    part_names = sorted({name for record in kept for name in record.visible_parts()})
    landmarks, visible = landmarks_in_box_units(kept, part_names, record_boxes(kept))
    streamed_a = _stream(
        stored_a,
        features_a,
        size_a,
        keep_a,
        chosen_a,
        k,
        (landmarks, visible),
        compute,
        progress,
        f"inferring {model_a}",
    )
    if model_b == model_a:
        streamed_b = streamed_a
    else:
        streamed_b = _stream(
            stored_b,
            features_b,
            size_b,
            keep_b,
            chosen_b,
            k,
            (landmarks, visible),
            compute,
            progress,
            f"inferring {model_b}",
        )
    timings["inference"] = time.perf_counter() - tick

    tick = time.perf_counter()
    names_a, names_b = stored_a.layer_names, stored_b.layer_names
    matched_a = {
        i: torch.zeros(stored_a.graph.layers[i].num_patterns, dtype=torch.bool) for i in chosen_a
    }
    matched_b = {
        i: torch.zeros(stored_b.graph.layers[i].num_patterns, dtype=torch.bool) for i in chosen_b
    }
    pair_rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    for i in chosen_a:
        for j in chosen_b:
            found = top_similarity_candidates(
                streamed_a.firings[i],
                streamed_b.firings[j],
                tolerance=settings.tolerance,
                candidates=settings.candidates,
                block=settings.block,
                work_elements=settings.work_elements,
                device=compute,
                progress=progress,
                description=f"matching {names_a[i]} / {names_b[j]}",
            )
            a, b, similarity = match_candidates(found, settings.threshold)
            matched_a[i][a] = True
            matched_b[j][b] = True
            p_a, p_b = streamed_a.firings[i].num_patterns, streamed_b.firings[j].num_patterns
            pair_rows.append(
                {
                    "layer_a": names_a[i],
                    "layer_b": names_b[j],
                    "patterns_a": p_a,
                    "patterns_b": p_b,
                    "matched": int(a.numel()),
                    "unique_a": p_a - int(a.numel()),
                    "unique_b": p_b - int(a.numel()),
                    "mean_similarity": float(similarity.mean()) if a.numel() else float("nan"),
                    "best_similarity_a": float(found.best_a.clamp_min(0).mean()) if p_a else 0.0,
                }
            )
            frames.append(
                pd.DataFrame(
                    {
                        "pattern_a": ids_a[names_a[i]][a.numpy()],
                        "pattern_b": ids_b[names_b[j]][b.numpy()],
                        "layer_a": names_a[i],
                        "layer_b": names_b[j],
                        "idx_a": a.numpy(),
                        "idx_b": b.numpy(),
                        "similarity": similarity.double().numpy(),
                    }
                )
            )
    timings["matching"] = time.perf_counter() - tick

    tick = time.perf_counter()
    part_table = (
        part_rows(
            part_names,
            _part_instability(streamed_a, chosen_a),
            _part_instability(streamed_b, chosen_b),
            torch.cat([matched_a[i] for i in chosen_a]),
            torch.cat([matched_b[j] for j in chosen_b]),
            stable_threshold=settings.stable_threshold,
            n_best=settings.n_best,
        )
        if part_names
        else []
    )
    timings["parts"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - started
    return CompareReport(
        model_a=model_a,
        model_b=model_b,
        n_images=n_images,
        top_k_used=k,
        settings=settings,
        layers_a=[names_a[i] for i in chosen_a],
        layers_b=[names_b[j] for j in chosen_b],
        layer_pairs=pair_rows,
        per_layer_a=_per_layer(names_a, matched_a),
        per_layer_b=_per_layer(names_b, matched_b),
        statistics_a=graph_statistics(stored_a.graph, size_a),
        statistics_b=graph_statistics(stored_b.graph, size_b),
        parts=part_table,
        matches=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
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
    stored: StoredGraph,
    features: FeatureSet,
    input_size: int,
    keep: np.ndarray,
    chosen: list[int],
    top_k: int,
    parts: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    progress: Progress,
    description: str,
) -> _Streamed:
    """Infer ``stored`` chunk by chunk and keep only the top-k of every chosen layer.

    ``keep[r]`` is the feature-set index of shared image ``r``; images are numbered by ``r`` (the
    order both models share) and the others are skipped. ``parts``: landmarks ``[R, J, 2]`` in
    box units and their visibility ``[R, J]``, indexed by ``r``.
    """
    landmarks, visible = parts
    slot = torch.full((features.num_images,), -1, dtype=torch.long)
    slot[torch.as_tensor(keep, dtype=torch.long)] = torch.arange(len(keep))
    running = {i: RunningTopK(top_k) for i in chosen}
    instability = {i: StreamedInstability(int(landmarks.shape[1]), top_k) for i in chosen}
    for start, stop, layers in iter_in_box_units(
        stored.graph,
        features,
        input_size=input_size,
        boxes=record_boxes(features.records),
        device=device,
        progress=progress,
        description=description,
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
