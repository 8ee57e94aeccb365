"""Explanatory graphs to store rows and back: the store is the graph's home.

``graph_records`` turns a mining result into the :class:`graphstore.records.GraphRecords` bundle;
``load_graph`` rebuilds the :class:`miner.graph.ExplanatoryGraph` from the store, so inference on
new images (localisation, explanation, comparison) needs nothing but the store and the CNN.

Pixel frames: ``Pattern.x/y`` and ``PARENT.dx/dy`` are model-input pixels (the object crop);
``FIRES.x/y`` are original-image pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch

from explgraph.core.errors import ModelError, StoreError
from graphstore import GraphStore
from graphstore.records import GraphRecords, filter_id, layer_id
from miner.data.records import ImageRecord
from miner.graph import ExplanatoryGraph, GraphSettings, LayerPatterns
from miner.mining import MiningResult
from miner.models.spec import LayerGeometry, LoadedModel


def _pattern_ids(model_id: str, patterns: LayerPatterns) -> np.ndarray:
    name = patterns.geometry.name
    per_filter = max(patterns.per_filter, 1)
    index = np.arange(patterns.num_patterns)
    filters = patterns.filter.cpu().numpy()
    within = index - filters * per_filter
    prefix = f"{model_id}/{name}/f"
    return (
        pd.Series(filters.astype(str)).radd(prefix).str.cat(pd.Series(within.astype(str)), sep="/p")
    ).to_numpy()


def graph_records(
    result: MiningResult,
    model_id: str,
    *,
    dataset: str,
    extra_params: dict[str, Any] | None = None,
) -> GraphRecords:
    """The store rows of one mining result (vectorised; no loop over patterns or edges)."""
    graph, features, model = result.graph, result.features, result.model
    layer_rows, filter_rows, pattern_frames, parent_frames, fire_frames = [], [], [], [], []
    ids_per_layer = [_pattern_ids(model_id, lp) for lp in graph.layers]
    interpretable_layer = (model.interpretable or {}).get("layer")
    for depth, (lp, ids) in enumerate(zip(graph.layers, ids_per_layer, strict=True)):
        geo = lp.geometry
        layer_rows.append(
            {
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
                "interpretable": interpretable_layer == geo.name,
            }
        )
        counts = torch.bincount(lp.filter.cpu(), minlength=geo.channels).numpy()
        filter_rows.append(
            pd.DataFrame(
                {
                    "filter_id": [filter_id(model_id, geo.name, f) for f in range(geo.channels)],
                    "model_id": model_id,
                    "layer": geo.name,
                    "idx": np.arange(geo.channels),
                    "n_patterns": counts,
                }
            )
        )
        mean_px = geo.to_pixels(lp.mean_position.cpu()).numpy()
        pattern_frames.append(
            pd.DataFrame(
                {
                    "pattern_id": ids,
                    "model_id": model_id,
                    "layer": geo.name,
                    "filter": lp.filter.cpu().numpy(),
                    "idx": np.arange(lp.num_patterns),
                    "mu_x": lp.mu[:, 0].cpu().numpy().astype(np.float64),
                    "mu_y": lp.mu[:, 1].cpu().numpy().astype(np.float64),
                    "x": mean_px[:, 0].astype(np.float64),
                    "y": mean_px[:, 1].astype(np.float64),
                    "sigma": lp.sigma.cpu().numpy().astype(np.float64),
                    "mean_score": lp.mean_score.cpu().numpy().astype(np.float64),
                }
            )
        )
        if depth + 1 < len(graph.layers):
            upper = graph.layers[depth + 1]
            has = lp.parents.cpu() >= 0
            child, slot = has.nonzero(as_tuple=True)
            parent = lp.parents.cpu()[child, slot]
            offsets = lp.edge_offsets(upper.geometry).cpu()[child, slot]
            parent_sigma = upper.sigma.cpu()[parent] * upper.geometry.stride
            parent_frames.append(
                pd.DataFrame(
                    {
                        "src": ids[child.numpy()],
                        "dst": ids_per_layer[depth + 1][parent.numpy()],
                        "dx": offsets[:, 0].numpy().astype(np.float64),
                        "dy": offsets[:, 1].numpy().astype(np.float64),
                        "sigma": parent_sigma.numpy().astype(np.float64),
                        "weight": lp.parent_weight.cpu()[child, slot].numpy().astype(np.float64),
                    }
                )
            )
        fired = result.firings[depth]
        fire_frames.append(
            pd.DataFrame(
                {
                    "src": np.asarray(features.image_ids)[fired.image.numpy()],
                    "dst": ids[fired.pattern.numpy()],
                    "model_id": model_id,
                    "x": fired.x.numpy().astype(np.float64),
                    "y": fired.y.numpy().astype(np.float64),
                    "score": fired.score.numpy().astype(np.float64),
                    "rank": fired.rank.numpy().astype(np.int64),
                }
            )
        )
    params = {
        "settings": graph.settings.to_dict(),
        "soft_norm": [float(lp.soft_norm) for lp in graph.layers],
        "features_key": features.key,
        "skipped_images": [str(s.path) for s in features.skipped],
        **({"interpretable": model.interpretable} if model.interpretable else {}),
        **(extra_params or {}),
    }
    model_row = {
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
    }
    return GraphRecords(
        model=model_row,
        layers=pd.DataFrame(layer_rows),
        filters=pd.concat(filter_rows, ignore_index=True),
        patterns=pd.concat(pattern_frames, ignore_index=True),
        parents=pd.concat(parent_frames, ignore_index=True)
        if parent_frames
        else GraphRecords(model={}).parents,
        images=_image_rows(features.records, features.image_ids, dataset),
        fires=pd.concat(fire_frames, ignore_index=True),
    )


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
    layers: list[LayerPatterns] = []
    geometries = [
        LayerGeometry(
            name=str(row["name"]),
            index=int(row["depth"]),
            channels=int(row["channels"]),
            height=int(row["height"]),
            width=int(row["width"]),
            stride=float(row["stride"]),
            rf_size=float(row["rf_size"]),
            rf_offset=float(row["rf_offset"]),
        )
        for row in layer_rows
    ]
    for depth, geo in enumerate(geometries):
        rows = patterns[patterns["layer"] == geo.name].sort_values("idx")
        n = len(rows)
        mu = torch.tensor(rows[["mu_x", "mu_y"]].to_numpy(np.float64), dtype=torch.float32)
        mean_px = torch.tensor(rows[["x", "y"]].to_numpy(np.float64), dtype=torch.float32)
        parents = torch.full((n, settings.parents), -1, dtype=torch.long)
        weight = torch.zeros(n, settings.parents)
        parent_mean = torch.zeros(n, settings.parents, 2)
        if depth + 1 < len(geometries) and len(edges):
            mine = edges[edges["layer"] == geo.name].sort_values(
                ["child", "weight"], ascending=[True, False]
            )
            child = mine["child"].to_numpy(np.int64)
            slot = mine.groupby("child").cumcount().to_numpy(np.int64)
            keep = slot < settings.parents
            child, slot = child[keep], slot[keep]
            parents[child, slot] = torch.from_numpy(mine["parent"].to_numpy(np.int64)[keep])
            weight[child, slot] = torch.from_numpy(
                mine["weight"].to_numpy(np.float64)[keep]
            ).float()
            # p̄ of the parent from the stored edge offset: child mu (pixels) - (dx, dy)
            child_px = geo.to_pixels(mu)[torch.from_numpy(child)]
            offset = torch.from_numpy(mine[["dx", "dy"]].to_numpy(np.float64)[keep]).float()
            parent_mean[child, slot] = geometries[depth + 1].to_units(child_px - offset)
        layers.append(
            LayerPatterns(
                geometry=geo,
                filter=torch.tensor(rows["filter"].to_numpy(np.int64)),
                mu=mu,
                sigma=torch.tensor(rows["sigma"].to_numpy(np.float64), dtype=torch.float32),
                parents=parents,
                parent_weight=weight,
                parent_mean=parent_mean,
                mean_position=geo.to_units(mean_px),
                mean_score=torch.tensor(rows["mean_score"].to_numpy(np.float64)).float(),
                soft_norm=float(soft_norm[depth]) if depth < len(soft_norm) else 1.0,
                explained_share=float(layer_rows[depth]["share"] or 0.0),
            )
        )
    graph = ExplanatoryGraph(
        layers=layers, settings=settings, flips=torch.zeros(0, dtype=torch.bool)
    )
    return StoredGraph(model_id=model_id, model=model, params=params, graph=graph)


def load_stored_model(stored: StoredGraph, device: str = "cpu") -> LoadedModel:
    """Load the CNN a stored graph was mined from, as the mine command was given it.

    Raises:
        ModelError: the CNN cannot be loaded any more (file moved, weights changed).
    """
    from miner.models import load_model

    loaded = load_model(
        str(stored.model["source"]), stored.params.get("weights_arg"), device=device
    )
    if loaded.fingerprint != stored.model.get("fingerprint"):
        raise ModelError(
            f"the weights of {stored.model['source']} changed since {stored.model_id} was mined "
            f"(fingerprint {loaded.fingerprint} != {stored.model.get('fingerprint')}): "
            "mine the model again"
        )
    return loaded


__all__ = ["StoredGraph", "graph_records", "load_graph", "load_stored_model"]
