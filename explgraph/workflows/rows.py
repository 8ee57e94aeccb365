"""A mining result as store rows: :class:`miner.mining.MiningResult` → :class:`GraphRecords`.

Vectorised per layer: no loop over patterns or edges. The rows carry everything inference needs
(format :data:`graphstore.schema.FORMAT_VERSION`): each layer's geometry with the per-unit std
and mean filter peaks of the mining images, their object boxes, and the CNN's identity.

Pixel frames: ``Pattern.x/y`` and ``PARENT.dx/dy`` are model-input pixels (the object crop);
``FIRES.x/y`` are original-image pixels.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch

from graphstore.arrays import encode_array
from graphstore.records import GraphRecords, filter_id, layer_id, pattern_ids
from graphstore.schema import FORMAT_VERSION
from miner.data.records import ImageRecord
from miner.features import FeatureSet
from miner.firings import Firings
from miner.graph import ExplanatoryGraph, LayerPatterns
from miner.mining import MiningResult
from miner.models.identity import identify


def _float64(values: torch.Tensor) -> np.ndarray:
    return values.cpu().numpy().astype(np.float64)


def layer_pattern_ids(model_id: str, patterns: LayerPatterns) -> np.ndarray:
    """The store ids of one layer's patterns, in pattern order."""
    per_filter = max(patterns.per_filter, 1)
    filters = patterns.filter.cpu().numpy()
    within = np.arange(patterns.num_patterns) - filters * per_filter
    return pattern_ids(model_id, patterns.geometry.name, filters, within)


def _layer_row(
    model_id: str, depth: int, lp: LayerPatterns, interpretable: bool, statistics: dict[str, str]
) -> dict[str, Any]:
    geo = lp.geometry
    return {
        "layer_id": layer_id(model_id, geo.name),
        "model_id": model_id,
        "name": geo.name,
        "depth": depth,
        "height": geo.height,
        "width": geo.width,
        "stride": float(geo.stride),
        "rf_size": float(geo.rf_size),
        "rf_offset": float(geo.rf_offset),
        "channels": geo.channels,
        "explained_share": float(lp.explained_share),
        "interpretable": interpretable,
        **statistics,
    }


def layer_statistics(features: FeatureSet) -> list[dict[str, str]]:
    """Per layer, what new images are read through (docs/method.md §2): the per-unit std of the
    mining images and each filter's mean peak mass over them, encoded for the store."""
    from queries.aog.baselines import filter_reference_peaks

    peaks = filter_reference_peaks(features)
    return [
        {
            "unit_std": encode_array(features.std(index)),
            "filter_peaks": encode_array(peaks[index].numpy()),
        }
        for index in range(len(features.layers))
    ]


def _filter_frame(model_id: str, lp: LayerPatterns) -> pd.DataFrame:
    geo = lp.geometry
    counts = torch.bincount(lp.filter.cpu(), minlength=geo.channels).numpy()
    return pd.DataFrame(
        {
            "filter_id": [filter_id(model_id, geo.name, f) for f in range(geo.channels)],
            "model_id": model_id,
            "layer": geo.name,
            "idx": np.arange(geo.channels),
            "n_patterns": counts,
        }
    )


def _pattern_frame(model_id: str, lp: LayerPatterns, ids: np.ndarray) -> pd.DataFrame:
    mean_px = lp.geometry.to_pixels(lp.mean_position.cpu()).numpy()
    return pd.DataFrame(
        {
            "pattern_id": ids,
            "model_id": model_id,
            "layer": lp.geometry.name,
            "filter": lp.filter.cpu().numpy(),
            "idx": np.arange(lp.num_patterns),
            "mu_x": _float64(lp.mu[:, 0]),
            "mu_y": _float64(lp.mu[:, 1]),
            "x": mean_px[:, 0].astype(np.float64),
            "y": mean_px[:, 1].astype(np.float64),
            "sigma": _float64(lp.sigma),
            "mean_score": _float64(lp.mean_score),
        }
    )


def _parent_frame(
    lp: LayerPatterns, upper: LayerPatterns, ids: np.ndarray, upper_ids: np.ndarray
) -> pd.DataFrame:
    """The PARENT edges from ``lp``'s patterns to the layer above (offsets in input pixels)."""
    has = lp.parents.cpu() >= 0
    child, slot = has.nonzero(as_tuple=True)
    parent = lp.parents.cpu()[child, slot]
    offsets = lp.edge_offsets(upper.geometry).cpu()[child, slot]
    parent_sigma = upper.sigma.cpu()[parent] * upper.geometry.stride
    return pd.DataFrame(
        {
            "src": ids[child.numpy()],
            "dst": upper_ids[parent.numpy()],
            "dx": offsets[:, 0].numpy().astype(np.float64),
            "dy": offsets[:, 1].numpy().astype(np.float64),
            "sigma": parent_sigma.numpy().astype(np.float64),
            "weight": lp.parent_weight.cpu()[child, slot].numpy().astype(np.float64),
        }
    )


def _fire_frame(
    model_id: str, fired: Firings, image_ids: np.ndarray, ids: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "src": image_ids[fired.image.numpy()],
            "dst": ids[fired.pattern.numpy()],
            "model_id": model_id,
            "x": fired.x.numpy().astype(np.float64),
            "y": fired.y.numpy().astype(np.float64),
            "score": fired.score.numpy().astype(np.float64),
            "rank": fired.rank.numpy().astype(np.int64),
        }
    )


def _model_row(
    result: MiningResult,
    model_id: str,
    weights: str | None,
    extra_params: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Model node: the CNN and its identity, the run's parameters (JSON), its provenance."""
    graph, features, model = result.graph, result.features, result.model
    params = {
        "settings": graph.settings.to_dict(),
        "soft_norm": [float(lp.soft_norm) for lp in graph.layers],
        "features_key": features.key,
        "skipped_images": [str(s.path) for s in features.skipped],
        **({"interpretable": model.interpretable} if model.interpretable else {}),
        **(extra_params or {}),
    }
    return {
        "model_id": model_id,
        "architecture": model.name,
        "source": model.source,
        "weights": model.weights,
        "fingerprint": model.fingerprint,
        "input_size": int(model.input_size),
        "layers": [lp.geometry.name for lp in graph.layers],
        "params": json.dumps(params, sort_keys=True, default=str),
        "seed": int(graph.settings.seed),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_images": features.num_images,
        "normalisation": features.normalisation,
        "interpretable": model.interpretable is not None,
        "format_version": FORMAT_VERSION,
        "identity": identify(model, weights).to_json(),
        "boxes": mining_boxes(features.records),
    }


def mining_boxes(records: list[ImageRecord]) -> str:
    """JSON: each mining image's object box (as mining cropped it) by its ``Image.path``."""
    boxes = {str(r.path.resolve()): [float(v) for v in r.box] for r in records if r.box}
    return json.dumps(boxes, sort_keys=True)


def _image_rows(records: list[ImageRecord], image_ids: list[str], dataset: str) -> pd.DataFrame:
    from PIL import Image

    widths, heights = [], []
    for record in records:  # header reads only: no decoding
        with Image.open(record.path) as handle:
            widths.append(handle.width)
            heights.append(handle.height)
    frame = pd.DataFrame(
        {
            "image_id": image_ids,
            "path": [str(r.path.resolve()) for r in records],
            "width": widths,
            "height": heights,
            "dataset": dataset,
            "label": [r.label for r in records],
            "split": [r.split for r in records],
        }
    )
    return frame.drop_duplicates("image_id")  # the same file twice is one image


def _parent_frames(graph: ExplanatoryGraph, ids_per_layer: list[np.ndarray]) -> pd.DataFrame:
    frames = [
        _parent_frame(lp, graph.layers[depth + 1], ids_per_layer[depth], ids_per_layer[depth + 1])
        for depth, lp in enumerate(graph.layers[:-1])
    ]
    return pd.concat(frames, ignore_index=True) if frames else GraphRecords(model={}).parents


def graph_records(
    result: MiningResult,
    model_id: str,
    *,
    dataset: str,
    weights: str | None = None,
    extra_params: dict[str, Any] | None = None,
) -> GraphRecords:
    """The store rows of one mining result (vectorised; no loop over patterns or edges).

    ``dataset`` names the images' dataset on their Image rows; ``weights`` is the weights
    argument the CNN was loaded with (its identity needs it); ``extra_params`` join the model's
    ``params`` (the mine workflow records its run digest and request there).
    """
    graph, features = result.graph, result.features
    ids_per_layer = [layer_pattern_ids(model_id, lp) for lp in graph.layers]
    interpretable_layer = (result.model.interpretable or {}).get("layer")
    image_ids = np.asarray(features.image_ids)
    pairs = list(zip(graph.layers, ids_per_layer, strict=True))
    statistics = layer_statistics(features)
    return GraphRecords(
        model=_model_row(result, model_id, weights, extra_params),
        layers=pd.DataFrame(
            [
                _layer_row(
                    model_id, depth, lp, interpretable_layer == lp.geometry.name, statistics[depth]
                )
                for depth, lp in enumerate(graph.layers)
            ]
        ),
        filters=pd.concat([_filter_frame(model_id, lp) for lp in graph.layers], ignore_index=True),
        patterns=pd.concat(
            [_pattern_frame(model_id, lp, ids) for lp, ids in pairs], ignore_index=True
        ),
        parents=_parent_frames(graph, ids_per_layer),
        images=_image_rows(features.records, features.image_ids, dataset),
        fires=pd.concat(
            [
                _fire_frame(model_id, result.firings[depth], image_ids, ids)
                for depth, ids in enumerate(ids_per_layer)
            ],
            ignore_index=True,
        ),
    )


__all__ = ["graph_records", "layer_pattern_ids", "layer_statistics", "mining_boxes"]
