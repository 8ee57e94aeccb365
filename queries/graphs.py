"""Explanatory graphs back from the store: the store is the graph's home.

``load_graph`` rebuilds the :class:`miner.graph.ExplanatoryGraph` from the store, so inference on
new images (localisation, explanation, comparison) needs nothing but the store and the CNN. (A
mining result becomes store rows in :mod:`explgraph.workflows.rows`.)

Pixel frames: ``Pattern.x/y`` and ``PARENT.dx/dy`` are model-input pixels (the object crop);
``FIRES.x/y`` are original-image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import InputError, StoreError
from graphstore import GraphStore
from miner.data.records import Box
from miner.graph import ExplanatoryGraph, GraphSettings, LayerPatterns
from miner.models.spec import LayerGeometry


@dataclass
class StoredGraph:
    """A graph read back from the store, with what is needed to run its CNN again."""

    model_id: str
    model: dict[str, Any]
    params: dict[str, Any]
    graph: ExplanatoryGraph

    @property
    def layer_names(self) -> list[str]:
        """The graph's layers, bottom→top."""
        return [lp.geometry.name for lp in self.graph.layers]


def load_graph(store: GraphStore, model_id: str) -> StoredGraph:
    """Rebuild the explanatory graph of ``model_id`` from the store.

    Raises:
        UnknownModel: no such model; StoreError: the model was not completely written.
    """
    model = store.describe_model(model_id)
    if model.get("status") != "complete":
        raise StoreError(
            f"model {model_id!r} is marked {model.get('status')!r}, not complete: mine it again"
        )
    params = model["params"]
    settings = GraphSettings.from_dict(params["settings"])
    soft_norm = params.get("soft_norm", [])
    layer_rows, patterns, edges = _graph_tables(store, model_id)
    geometries = [_geometry(row) for row in layer_rows]
    layers = [
        _layer_patterns(
            patterns[patterns["layer"] == geo.name].sort_values("idx"),
            edges if depth + 1 < len(geometries) else edges.iloc[0:0],
            geometries,
            depth,
            settings,
            soft_norm=float(soft_norm[depth]) if depth < len(soft_norm) else 1.0,
            explained_share=float(layer_rows[depth]["share"] or 0.0),
        )
        for depth, geo in enumerate(geometries)
    ]
    graph = ExplanatoryGraph(
        layers=layers, settings=settings, flips=torch.zeros(0, dtype=torch.bool)
    )
    return StoredGraph(model_id=model_id, model=model, params=params, graph=graph)


def _graph_tables(
    store: GraphStore, model_id: str
) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """The model's layers (bottom→top), patterns and PARENT edges as the store holds them."""
    layer_rows = store.query(
        "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name, l.depth AS depth, "
        "l.channels AS channels, l.height AS height, l.width AS width, l.stride AS stride, "
        "l.rf_size AS rf_size, l.rf_offset AS rf_offset, l.explained_share AS share",
        {"m": model_id},
    )
    layer_rows.sort(key=lambda row: int(row["depth"]))
    # tens of thousands of rows: read column-wise where the engine can
    patterns = store.query_frame(
        "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.layer AS layer, p.idx AS idx, "
        "p.filter AS filter, p.mu_x AS mu_x, p.mu_y AS mu_y, p.x AS x, p.y AS y, "
        "p.sigma AS sigma, p.mean_score AS mean_score",
        {"m": model_id},
    )
    edges = store.query_frame(
        "MATCH (c:Pattern)-[r:PARENT]->(q:Pattern) WHERE c.model_id = $m "
        "RETURN c.layer AS layer, c.idx AS child, q.idx AS parent, r.dx AS dx, r.dy AS dy, "
        "r.weight AS weight",
        {"m": model_id},
    )
    return layer_rows, patterns, edges


def _geometry(row: dict[str, Any]) -> LayerGeometry:
    """A layer's geometry from its store row."""
    return LayerGeometry(
        name=str(row["name"]),
        index=int(row["depth"]),
        channels=int(row["channels"]),
        height=int(row["height"]),
        width=int(row["width"]),
        stride=float(row["stride"]),
        rf_size=float(row["rf_size"]),
        rf_offset=float(row["rf_offset"]),
    )


def _layer_patterns(
    rows: pd.DataFrame,
    edges: pd.DataFrame,
    geometries: list[LayerGeometry],
    depth: int,
    settings: GraphSettings,
    *,
    soft_norm: float,
    explained_share: float,
) -> LayerPatterns:
    """Layer ``depth``'s patterns (``rows``, sorted by index) and their parent slots, from the
    PARENT ``edges`` (empty for the top layer), heaviest edge first."""
    geo = geometries[depth]
    n = len(rows)
    mu = torch.tensor(rows[["mu_x", "mu_y"]].to_numpy(np.float64), dtype=torch.float32)
    mean_px = torch.tensor(rows[["x", "y"]].to_numpy(np.float64), dtype=torch.float32)
    parents = torch.full((n, settings.parents), -1, dtype=torch.long)
    weight = torch.zeros(n, settings.parents)
    parent_mean = torch.zeros(n, settings.parents, 2)
    if len(edges):
        mine = edges[edges["layer"] == geo.name].sort_values(
            ["child", "weight"], ascending=[True, False]
        )
        child = mine["child"].to_numpy(np.int64)
        slot = mine.groupby("child").cumcount().to_numpy(np.int64)
        keep = slot < settings.parents
        child, slot = child[keep], slot[keep]
        parents[child, slot] = torch.from_numpy(mine["parent"].to_numpy(np.int64)[keep])
        weight[child, slot] = torch.from_numpy(mine["weight"].to_numpy(np.float64)[keep]).float()
        # p̄ of the parent from the stored edge offset: child mu (pixels) - (dx, dy)
        child_px = geo.to_pixels(mu)[torch.from_numpy(child)]
        offset = torch.from_numpy(mine[["dx", "dy"]].to_numpy(np.float64)[keep]).float()
        parent_mean[child, slot] = geometries[depth + 1].to_units(child_px - offset)
    return LayerPatterns(
        geometry=geo,
        filter=torch.tensor(rows["filter"].to_numpy(np.int64)),
        mu=mu,
        sigma=torch.tensor(rows["sigma"].to_numpy(np.float64), dtype=torch.float32),
        parents=parents,
        parent_weight=weight,
        parent_mean=parent_mean,
        mean_position=geo.to_units(mean_px),
        mean_score=torch.tensor(rows["mean_score"].to_numpy(np.float64)).float(),
        soft_norm=soft_norm,
        explained_share=explained_share,
    )


def mined_boxes(params: dict[str, Any]) -> dict[str, Box]:
    """Object boxes of the images a model was mined on, by resolved path, read from the dataset
    its ``params`` record.

    Empty when that dataset is no longer where it was: callers then use whole images.
    """
    from miner.data.folder import load_dataset

    images = params.get("images")
    if not images:
        return {}
    annotations = params.get("annotations")
    try:
        dataset = load_dataset(Path(images), Path(annotations) if annotations else None)
    except InputError:
        return {}
    return {str(r.path.resolve()): r.box for r in dataset.records if r.box is not None}


__all__ = ["StoredGraph", "load_graph", "mined_boxes"]
