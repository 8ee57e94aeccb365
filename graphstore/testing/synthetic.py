"""Synthetic explanatory graphs of any size, for the store's smoke job, tests and benchmark.

The graph has the shape of a mined one (layers, filters, patterns, PARENT edges from each
pattern to patterns of the layer above, FIRES edges from images) with random but deterministic
values; it says nothing about any real CNN.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from graphstore.records import GraphRecords, filter_id, layer_id, pattern_ids

# A prime larger than any layer: stepping by it visits distinct targets modulo a layer size
# that it does not divide, so the generated edges never repeat.
_STEP = 104_729


@dataclass(frozen=True)
class LayerShape:
    """One synthetic layer: map size, stride in pixels and patterns per filter."""

    name: str
    size: int
    stride: float
    patterns_per_filter: int


VGG16_LAYERS: tuple[LayerShape, ...] = (
    LayerShape("conv4_2", 28, 8.0, 40),
    LayerShape("conv4_3", 28, 8.0, 40),
    LayerShape("conv5_2", 14, 16.0, 20),
    LayerShape("conv5_3", 14, 16.0, 20),
)


def synthetic_records(
    model_id: str,
    *,
    channels: int = 512,
    layers: tuple[LayerShape, ...] = VGG16_LAYERS,
    parents_per_pattern: int = 18,
    n_images: int = 2000,
    fires_per_image: int = 200,
    seed: int = 0,
) -> GraphRecords:
    """A random explanatory graph with ``channels`` filters per layer.

    With the defaults it is VGG-16-sized: 61,440 patterns, 921,600 PARENT edges (18 per pattern
    of the three lower layers) and 400,000 FIRES edges (200 per image, 2,000 images).

    Example:
        >>> records = synthetic_records("toy", channels=2, n_images=3, fires_per_image=4)
        >>> len(records.patterns), len(records.fires)
        (240, 12)
    """
    rng = np.random.default_rng(seed)
    layer_rows, filter_frames, pattern_frames = [], [], []
    for depth, shape in enumerate(layers):
        layer_rows.append(_layer_row(model_id, depth, shape, channels))
        filter_frames.append(_filter_frame(model_id, shape, channels))
        pattern_frames.append(_pattern_frame(model_id, shape, channels, rng))
    patterns = pd.concat(pattern_frames, ignore_index=True)
    parents = _parent_edges(pattern_frames, parents_per_pattern, rng)
    # image ids depend on the seed only, so two models built with one seed share their images
    image_ids = np.array([f"{seed:08x}{i:08x}" for i in range(n_images)])
    fires = _fires_edges(image_ids, patterns["pattern_id"].to_numpy(), fires_per_image, rng)
    return GraphRecords(
        model=_model(model_id, layers, channels, parents_per_pattern, n_images, seed),
        layers=pd.DataFrame(layer_rows),
        filters=pd.concat(filter_frames, ignore_index=True),
        patterns=patterns,
        parents=parents,
        images=_images(image_ids),
        fires=fires,
    )


def _layer_row(model_id: str, depth: int, shape: LayerShape, channels: int) -> dict[str, Any]:
    return {
        "layer_id": layer_id(model_id, shape.name),
        "model_id": model_id,
        "name": shape.name,
        "depth": depth,
        "height": shape.size,
        "width": shape.size,
        "stride": shape.stride,
        "rf_size": shape.stride * 12,
        "rf_offset": shape.stride / 2,
        "channels": channels,
    }


def _filter_frame(model_id: str, shape: LayerShape, channels: int) -> pd.DataFrame:
    filters = np.arange(channels)
    return pd.DataFrame(
        {
            "filter_id": [filter_id(model_id, shape.name, f) for f in range(channels)],
            "model_id": model_id,
            "layer": shape.name,
            "idx": filters,
            "n_patterns": shape.patterns_per_filter,
        }
    )


def _pattern_frame(
    model_id: str, shape: LayerShape, channels: int, rng: np.random.Generator
) -> pd.DataFrame:
    n = channels * shape.patterns_per_filter
    filter_of = np.repeat(np.arange(channels), shape.patterns_per_filter)
    index_in = np.tile(np.arange(shape.patterns_per_filter), channels)
    mu = rng.uniform(0, shape.size - 1, size=(n, 2))
    return pd.DataFrame(
        {
            "pattern_id": pattern_ids(model_id, shape.name, filter_of, index_in),
            "model_id": model_id,
            "layer": shape.name,
            "filter": filter_of,
            "idx": index_in,
            "mu_x": mu[:, 0],
            "mu_y": mu[:, 1],
            "x": mu[:, 0] * shape.stride + shape.stride / 2,
            "y": mu[:, 1] * shape.stride + shape.stride / 2,
            "sigma": rng.uniform(0.5, 3.0, n),
            "mean_score": rng.gamma(2.0, 1.0, n),
        }
    )


def _images(image_ids: np.ndarray) -> pd.DataFrame:
    n_images = len(image_ids)
    return pd.DataFrame(
        {
            "image_id": image_ids,
            "path": [f"synthetic/{i:06d}.png" for i in range(n_images)],
            "width": 224,
            "height": 224,
            "dataset": "synthetic",
            "label": "object",
            "split": np.where(np.arange(n_images) % 5 == 0, "test", "train"),
        }
    )


def _model(
    model_id: str,
    layers: tuple[LayerShape, ...],
    channels: int,
    parents_per_pattern: int,
    n_images: int,
    seed: int,
) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "architecture": "synthetic",
        "source": "graphstore.synthetic",  # a stored value: kept when the module moved
        "weights": "none",
        "fingerprint": f"synthetic-{seed}",
        "input_size": 224,
        "layers": [shape.name for shape in layers],
        "params": json.dumps({"channels": channels, "parents_per_pattern": parents_per_pattern}),
        "seed": seed,
        "created": "1970-01-01T00:00:00+00:00",
        "n_images": n_images,
        "normalisation": "none",
    }


def _parent_edges(
    layers: list[pd.DataFrame], per_child: int, rng: np.random.Generator
) -> pd.DataFrame:
    frames = []
    for child, parent in itertools.pairwise(layers):
        n_child, n_parent = len(child), len(parent)
        count = min(per_child, n_parent)
        base = rng.integers(0, n_parent, n_child)
        picks = (base[:, None] + np.arange(count)[None, :] * _STEP) % n_parent
        frames.append(
            pd.DataFrame(
                {
                    "src": np.repeat(child["pattern_id"].to_numpy(), count),
                    "dst": parent["pattern_id"].to_numpy()[picks.ravel()],
                    "dx": rng.normal(0, 20, n_child * count),
                    "dy": rng.normal(0, 20, n_child * count),
                    "sigma": rng.uniform(0.5, 3.0, n_child * count),
                    "weight": rng.uniform(0, 1, n_child * count),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["src", "dst", "dx", "dy", "sigma", "weight"])
    return pd.concat(frames, ignore_index=True)


def _fires_edges(
    image_ids: np.ndarray, pattern_ids: np.ndarray, per_image: int, rng: np.random.Generator
) -> pd.DataFrame:
    count = min(per_image, len(pattern_ids))
    base = rng.integers(0, len(pattern_ids), len(image_ids))
    picks = (base[:, None] + np.arange(count)[None, :] * _STEP) % len(pattern_ids)
    total = len(image_ids) * count
    return pd.DataFrame(
        {
            "src": np.repeat(image_ids, count),
            "dst": pattern_ids[picks.ravel()],
            "x": rng.uniform(0, 224, total),
            "y": rng.uniform(0, 224, total),
            "score": rng.gamma(2.0, 1.0, total),
            "rank": np.tile(np.arange(count), len(image_ids)),
        }
    )


__all__ = ["VGG16_LAYERS", "LayerShape", "synthetic_records"]
