"""The Cypher an And-Or graph is built from: candidate firings, pattern properties, relations.

Every statement runs on both engines (LadybugDB and Bolt/Neo4j): one MATCH per pattern, ``IN``
lists for key sets, no engine-specific functions. Firing positions come back in original-image
pixels (``FIRES.x/y``); :func:`to_crop` maps them into each image's object crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from graphstore import GraphStore


def _rows(
    store: GraphStore,
    keys: Sequence[object],
    columns: Sequence[str],
    statement: str,
    params: dict[str, object],
) -> pd.DataFrame:
    """The rows of ``statement`` as a frame of ``columns``; no query when ``keys`` is empty."""
    rows = store.query(statement, params) if len(keys) else []
    return pd.DataFrame(rows, columns=list(columns))


def shot_firings(store: GraphStore, model_id: str, image_ids: Sequence[str]) -> pd.DataFrame:
    """FIRES rows of the model on the given images (empty for images that were not mined)."""
    return _rows(
        store,
        image_ids,
        ("image_id", "pattern_id", "layer", "idx", "x", "y", "score"),
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE i.image_id IN $ids AND f.model_id = $m "
        "RETURN i.image_id AS image_id, p.pattern_id AS pattern_id, p.layer AS layer, "
        "p.idx AS idx, f.x AS x, f.y AS y, f.score AS score",
        {"ids": list(image_ids), "m": model_id},
    )


def pattern_rows(store: GraphStore, model_id: str, layer: str, idx: Sequence[int]) -> pd.DataFrame:
    """Id, sigma (map units) and mean score of the patterns ``idx`` of one layer."""
    return _rows(
        store,
        idx,
        ("idx", "pattern_id", "sigma", "mean_score"),
        "MATCH (p:Pattern) WHERE p.model_id = $m AND p.layer = $layer AND p.idx IN $idx "
        "RETURN p.idx AS idx, p.pattern_id AS pattern_id, p.sigma AS sigma, "
        "p.mean_score AS mean_score",
        {"m": model_id, "layer": layer, "idx": [int(i) for i in idx]},
    )


def candidate_firings(store: GraphStore, model_id: str, pattern_ids: Sequence[str]) -> pd.DataFrame:
    """Every stored firing of the candidate patterns, with the image's path and size."""
    return _rows(
        store,
        pattern_ids,
        ("pattern_id", "image_id", "path", "width", "height", "x", "y", "score"),
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE p.pattern_id IN $ids AND f.model_id = $m "
        "RETURN p.pattern_id AS pattern_id, i.image_id AS image_id, i.path AS path, "
        "i.width AS width, i.height AS height, f.x AS x, f.y AS y, f.score AS score",
        {"ids": list(pattern_ids), "m": model_id},
    )


def parent_links(store: GraphStore, pattern_ids: Sequence[str]) -> pd.DataFrame:
    """PARENT edges whose both ends are among ``pattern_ids``."""
    return _rows(
        store,
        pattern_ids,
        ("child", "parent", "dx", "dy", "weight"),
        "MATCH (c:Pattern)-[r:PARENT]->(q:Pattern) WHERE c.pattern_id IN $ids "
        "AND q.pattern_id IN $ids RETURN c.pattern_id AS child, q.pattern_id AS parent, "
        "r.dx AS dx, r.dy AS dy, r.weight AS weight",
        {"ids": list(pattern_ids)},
    )


def to_crop(
    rows: pd.DataFrame, boxes: dict[str, tuple[float, float, float, float]], size: int
) -> pd.DataFrame:
    """``rows`` (``path``, ``width``, ``height``, ``x``, ``y`` in image pixels) with ``x``, ``y``
    in crop pixels of each image's object box (the whole image where no box is known)."""
    if len(rows) == 0:
        return rows.copy()
    whole = np.stack(
        [
            np.zeros(len(rows)),
            np.zeros(len(rows)),
            rows["width"].to_numpy(np.float64),
            rows["height"].to_numpy(np.float64),
        ],
        axis=1,
    )
    known = rows["path"].map(lambda p: boxes.get(str(p)))
    box = np.array(
        [b if b is not None else tuple(w) for b, w in zip(known, whole, strict=True)],
        dtype=np.float64,
    )
    out = rows.copy()
    out["x"] = (rows["x"].to_numpy(np.float64) - box[:, 0]) * size / (box[:, 2] - box[:, 0])
    out["y"] = (rows["y"].to_numpy(np.float64) - box[:, 1]) * size / (box[:, 3] - box[:, 1])
    return out


__all__ = [
    "candidate_firings",
    "parent_links",
    "pattern_rows",
    "shot_firings",
    "to_crop",
]
