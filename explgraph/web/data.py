"""What each page shows, read from the store: plain dicts and lists, no HTML.

Every function takes a (read-only) :class:`GraphStore` and ids that came from the request; ids
are only ever bound as Cypher parameters, never spliced into the text. Unknown ids raise
:class:`NotFound`, which the app answers with 404.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from decimal import Decimal
from typing import Any

from explgraph.core.errors import InputError, StoreError
from graphstore import GraphStore, model_params
from graphstore.records import layer_id
from graphstore.schema import node_spec

#: what a pattern id looks like: <model>/<layer>/f<filter>/p<index>
PATTERN_ID = re.compile(r"^(?P<model>.+)/(?P<layer>[^/]+)/f(?P<filter>\d+)/p(?P<idx>\d+)$")
#: children and parents drawn in the neighbourhood view, strongest first
NEIGHBOURS_DRAWN = 8
#: most rows of a table on one page
ROW_LIMIT = 500
#: a layer's geometry as the pattern page shows it
_GEOMETRY = ("height", "width", "stride", "rf_size", "depth")


class NotFound(InputError):
    """An id in the request names nothing in the store."""


def plain(value: Any) -> Any:
    """LadybugDB returns some integer sums as ``Decimal``: plain numbers for templates/JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _rows(store: GraphStore, cypher: str, **params: Any) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in store.query(cypher, params)]


# models and layers ---------------------------------------------------------------------------


class ModelCounts:
    """``GraphStore.list_models()`` (status and node / edge counts), kept between requests.

    Counting a VGG-16-sized model's PARENT edges per model takes about a second, so the counts
    are computed once and kept until the set of models changes (a model added, deleted, or its
    status or creation time changed), which one cheap query checks on every request.
    """

    def __init__(self) -> None:
        self._key: tuple[tuple[Any, ...], ...] | None = None
        self._models: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def get(self, store: GraphStore) -> list[dict[str, Any]]:
        """Every model with its counts (a fresh copy of each row)."""
        key = tuple(
            (row["id"], row["status"], row["created"])
            for row in store.query(
                "MATCH (m:Model) RETURN m.model_id AS id, m.status AS status, "
                "m.created AS created ORDER BY id"
            )
        )
        with self._lock:
            if key != self._key:
                self._models = [
                    {k: plain(v) for k, v in row.items()} for row in store.list_models()
                ]
                self._key = key
            return [dict(row) for row in self._models]


def models_overview(store: GraphStore, counts: ModelCounts) -> list[dict[str, Any]]:
    """Every model with status and counts, and its layers with explained share."""
    models = counts.get(store)
    layers = _rows(
        store,
        "MATCH (l:Layer) RETURN l.model_id AS model_id, l.name AS name, l.depth AS depth, "
        "l.explained_share AS explained_share, l.channels AS channels ORDER BY model_id, depth",
    )
    per_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in layers:
        per_model[row["model_id"]].append(row)
    for model in models:
        model["layer_rows"] = per_model.get(model["model_id"], [])
    return models


def model_detail(store: GraphStore, model_id: str, counts: ModelCounts) -> dict[str, Any]:
    """A model's properties, its layers (geometry, counts, explained share), parts, matches."""
    columns = node_spec("Model").columns
    found = _rows(
        store,
        "MATCH (m:Model {model_id: $id}) RETURN "
        + ", ".join(f"m.{name} AS {name}" for name in columns),
        id=model_id,
    )
    if not found:
        raise NotFound(f"no model {model_id!r} in this store")
    model = found[0]
    for row in counts.get(store):
        if row["model_id"] == model_id:
            model.update({k: v for k, v in row.items() if k.startswith("n_")})
    layers = _rows(
        store,
        "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name, l.depth AS depth, "
        "l.height AS height, l.width AS width, l.stride AS stride, l.rf_size AS rf_size, "
        "l.channels AS channels, l.explained_share AS explained_share ORDER BY depth",
        m=model_id,
    )
    per_layer = {
        row["layer"]: row
        for row in _rows(
            store,
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.layer AS layer, "
            "count(p) AS patterns, count(DISTINCT p.filter) AS filters_used",
            m=model_id,
        )
    }
    for layer in layers:
        layer.update(per_layer.get(layer["name"], {"patterns": 0, "filters_used": 0}))
    model["layers_detail"] = layers
    try:
        model["params_pretty"] = json.dumps(model_params(model_id, model.get("params")), indent=1)
    except StoreError:  # not a JSON object: shown as stored
        model["params_pretty"] = model.get("params") or ""
    model["parts"] = [
        row["name"]
        for row in _rows(
            store,
            "MATCH (a:Part) WHERE a.model_id = $m RETURN a.name AS name ORDER BY name",
            m=model_id,
        )
    ]
    model["compared_with"] = compared_models(store, model_id)
    model["explainers"] = model_explainers(store, model_id)
    return model


def model_explainers(store: GraphStore, model_id: str) -> list[dict[str, Any]]:
    """Per explained layer (in depth order): its explainer's figures and its no-filter-loss
    control's (``None`` when not stored), each with the parts its filters cover; read with the
    canned queries ``explained-layers`` and ``explainer-parts``. Empty when none is stored."""
    from queries.canned import run_canned

    figures = run_canned(store, "explained-layers", {"model": model_id})
    if not figures:
        return []
    layers: dict[str, dict[str, Any]] = {}
    for row in figures:
        entry = layers.setdefault(row["layer"], {"layer": row["layer"], "depth": row["depth"]})
        entry["control" if row["control"] else "explainer"] = {**row, "parts": []}
    for row in run_canned(store, "explainer-parts", {"model": model_id}):
        track = layers.get(row["layer"], {}).get("control" if row["control"] else "explainer")
        if track is not None:
            track["parts"].append({**row, "filters": sorted(row["filters"])})
    return [{"explainer": None, "control": None, **entry} for entry in layers.values()]


def compared_models(store: GraphStore, model_id: str) -> list[str]:
    """Models that share ``MATCHES`` edges with ``model_id`` (either direction)."""
    rows = _rows(
        store,
        "MATCH (p:Pattern)-[:MATCHES]-(q:Pattern) WHERE p.model_id = $m AND q.model_id <> $m "
        "RETURN DISTINCT q.model_id AS other ORDER BY other",
        m=model_id,
    )
    return [row["other"] for row in rows]


def layer_detail(store: GraphStore, model_id: str, layer: str) -> dict[str, Any]:
    """A layer's geometry and, per filter, its patterns' count, scores, diagnoses and the
    strongest pattern (aggregated by the engine: a VGG-16 layer has 20k patterns)."""
    rows = _rows(
        store,
        "MATCH (l:Layer {layer_id: $id}) RETURN l.name AS name, l.depth AS depth, "
        "l.height AS height, l.width AS width, l.stride AS stride, l.rf_size AS rf_size, "
        "l.channels AS channels, l.explained_share AS explained_share",
        id=layer_id(model_id, layer),
    )
    if not rows:
        raise NotFound(f"no layer {layer!r} in model {model_id!r}")
    filters = _rows(
        store,
        "MATCH (p:Pattern) WHERE p.model_id = $m AND p.layer = $l "
        "RETURN p.filter AS filter, count(p) AS patterns, max(p.mean_score) AS best, "
        "avg(p.mean_score) AS mean, count(p.diagnosis) AS diagnosed, "
        "sum(CASE WHEN p.diagnosis IS NULL OR p.diagnosis = 'ok' THEN 0 ELSE 1 END) AS flagged",
        m=model_id,
        l=layer,
    )
    best: dict[int, str] = {}
    for row in _rows(
        store,
        "MATCH (p:Pattern) WHERE p.model_id = $m AND p.layer = $l "
        "WITH p.filter AS f, max(p.mean_score) AS top "
        "MATCH (q:Pattern) WHERE q.model_id = $m AND q.layer = $l AND q.filter = f "
        "AND q.mean_score = top RETURN f AS filter, q.pattern_id AS pattern_id "
        "ORDER BY filter, pattern_id",
        m=model_id,
        l=layer,
    ):
        best.setdefault(int(row["filter"]), row["pattern_id"])
    for entry in filters:
        entry["best"] = float(entry["best"] or 0.0)
        entry["mean"] = float(entry["mean"] or 0.0)
        entry["top"] = [best[entry["filter"]]] if entry["filter"] in best else []
    detail = rows[0]
    detail["filters"] = filters
    detail["diagnosed"] = any(entry["diagnosed"] for entry in filters)
    return detail


#: the layer page's sort keys: column -> (row key, largest first)
LAYER_SORTS: dict[str, tuple[str, bool]] = {
    "filter": ("filter", False),
    "patterns": ("patterns", True),
    "score": ("best", True),
    "mean": ("mean", True),
    "diagnosis": ("flagged", True),
}


def sort_filters(filters: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Filters sorted by one of :data:`LAYER_SORTS` (ties by filter index)."""
    if key not in LAYER_SORTS:
        raise InputError(f"cannot sort by {key!r}: use one of {', '.join(LAYER_SORTS)}")
    column, descending = LAYER_SORTS[key]
    sign = -1 if descending else 1
    return sorted(filters, key=lambda row: (sign * row[column], row["filter"]))


def filter_patterns(
    store: GraphStore, model_id: str, layer: str, index: int
) -> list[dict[str, Any]]:
    """The patterns of one filter, strongest first (the ``filter-patterns`` canned query)."""
    from queries.canned import run_canned

    rows = run_canned(
        store, "filter-patterns", {"model": model_id, "layer": layer, "filter": index}
    )
    if not rows and not _rows(
        store,
        "MATCH (f:Filter) WHERE f.model_id = $m AND f.layer = $l AND f.idx = $i "
        "RETURN f.filter_id AS id",
        m=model_id,
        l=layer,
        i=index,
    ):
        raise NotFound(f"no filter {index} in layer {layer!r} of model {model_id!r}")
    return rows


# patterns ------------------------------------------------------------------------------------


def pattern_detail(store: GraphStore, pattern_id: str, *, top_images: int = 12) -> dict[str, Any]:
    """Everything the pattern page shows: properties, relations, top firings, parts, matches."""
    rows = _rows(
        store,
        "MATCH (p:Pattern {pattern_id: $id}) RETURN p.pattern_id AS pattern_id, "
        "p.model_id AS model_id, p.layer AS layer, p.filter AS filter, p.idx AS idx, "
        "p.mu_x AS mu_x, p.mu_y AS mu_y, p.x AS x, p.y AS y, p.sigma AS sigma, "
        "p.mean_score AS mean_score, p.diagnosis AS diagnosis, p.off_object AS off_object",
        id=pattern_id,
    )
    if not rows:
        raise NotFound(f"no pattern {pattern_id!r} in this store")
    pattern = rows[0]
    pattern["geometry"], pattern["problems"] = _layer_geometry(store, pattern)
    relation = (
        "RETURN o.pattern_id AS other, o.layer AS layer, r.dx AS dx, r.dy AS dy, "
        "r.sigma AS sigma, r.weight AS weight ORDER BY weight DESC, other"
    )
    pattern["parents"] = _rows(
        store,
        "MATCH (p:Pattern {pattern_id: $id})-[r:PARENT]->(o:Pattern) " + relation,
        id=pattern_id,
    )
    pattern["children"] = _rows(
        store,
        "MATCH (o:Pattern)-[r:PARENT]->(p:Pattern {pattern_id: $id}) " + relation,
        id=pattern_id,
    )
    pattern["firings"] = _rows(
        store,
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern {pattern_id: $id}) RETURN i.image_id AS image_id, "
        "f.x AS x, f.y AS y, f.score AS score, f.rank AS rank "
        "ORDER BY score DESC, image_id LIMIT $limit",
        id=pattern_id,
        limit=top_images,
    )
    pattern["parts"] = _rows(
        store,
        "MATCH (t:Template)-[u:USES]->(p:Pattern {pattern_id: $id}) RETURN t.part AS part, "
        "t.idx AS template, u.dx AS dx, u.dy AS dy, u.weight AS weight ORDER BY part, template",
        id=pattern_id,
    )
    pattern["matches"] = _rows(
        store,
        "MATCH (p:Pattern {pattern_id: $id})-[m:MATCHES]-(q:Pattern) "
        "RETURN q.pattern_id AS other, q.model_id AS model_id, q.layer AS layer, "
        "m.similarity AS similarity ORDER BY similarity DESC, other",
        id=pattern_id,
    )
    return pattern


def _layer_geometry(store: GraphStore, pattern: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The pattern's layer geometry, and a problem when its layer is not one of its model's."""
    geometry = _rows(
        store,
        "MATCH (l:Layer {layer_id: $id}) RETURN l.height AS height, l.width AS width, "
        "l.stride AS stride, l.rf_size AS rf_size, l.depth AS depth",
        id=layer_id(str(pattern["model_id"]), str(pattern["layer"])),
    )
    if geometry:
        return geometry[0], []
    # a layer changed with --write, or one deleted
    problem = (
        f"its layer {pattern['layer']!r} is not a layer of model {pattern['model_id']!r}: "
        "its map size and receptive field are unknown, so no patches are cut"
    )
    return dict.fromkeys(_GEOMETRY), [problem]


# images --------------------------------------------------------------------------------------


def image_row(store: GraphStore, image_id: str) -> dict[str, Any]:
    """The ``Image`` node's properties (its path stays on the server)."""
    rows = _rows(
        store,
        "MATCH (i:Image {image_id: $id}) RETURN i.image_id AS image_id, i.path AS path, "
        "i.width AS width, i.height AS height, i.dataset AS dataset, i.label AS label, "
        "i.split AS split",
        id=image_id,
    )
    if not rows:
        raise NotFound(f"no image {image_id!r} in this store")
    return rows[0]


def image_firings(store: GraphStore, image_id: str, *, per_layer: int = 10) -> list[dict[str, Any]]:
    """The stored firings on an image: per model and layer, its best ``per_layer`` patterns."""
    rows = _rows(
        store,
        "MATCH (i:Image {image_id: $id})-[f:FIRES]->(p:Pattern) WHERE f.rank < $top "
        "RETURN f.model_id AS model_id, p.layer AS layer, p.pattern_id AS pattern_id, "
        "f.rank AS rank, f.x AS x, f.y AS y, f.score AS score "
        "ORDER BY model_id, layer, rank, score DESC",
        id=image_id,
        top=per_layer,
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["model_id"], row["layer"])].append(row)
    return [
        {"model_id": model, "layer": layer, "patterns": patterns}
        for (model, layer), patterns in groups.items()
    ]


def sample_images(store: GraphStore, model_id: str, limit: int = 24) -> list[dict[str, Any]]:
    """Some images a model was mined on, for the image picker."""
    # no DISTINCT / ORDER BY: they make the engine read every FIRES edge of the model
    rows = _rows(
        store,
        "MATCH (i:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $m "
        "RETURN i.image_id AS image_id, i.label AS label LIMIT $n",
        m=model_id,
        n=limit * 40,
    )
    unique = {row["image_id"]: row for row in rows}
    return list(unique.values())[:limit]


def complete_models(store: GraphStore) -> list[str]:
    """Ids of the models whose write finished (the ones an image can be explained with)."""
    rows = _rows(
        store, "MATCH (m:Model) WHERE m.status = 'complete' RETURN m.model_id AS id ORDER BY id"
    )
    return [row["id"] for row in rows]


# parts ---------------------------------------------------------------------------------------


def parts_detail(store: GraphStore, model_id: str) -> list[dict[str, Any]]:
    """Every stored And-Or graph of a model: templates (their shots) and the patterns each uses.

    Read with plain Cypher rather than :func:`queries.aog.load_aog`, whose package imports torch.
    """
    model_detail_exists(store, model_id)
    parts = _rows(
        store,
        "MATCH (a:Part) WHERE a.model_id = $m RETURN a.part_id AS part_id, a.name AS name, "
        "a.source AS source ORDER BY name",
        m=model_id,
    )
    templates = _rows(
        store,
        "MATCH (a:Part)-[:HAS_TEMPLATE]->(t:Template) WHERE a.model_id = $m "
        "RETURN a.part_id AS part_id, t.idx AS idx, t.image_id AS image_id, t.x AS x, t.y AS y, "
        "t.n_patterns AS n_patterns ORDER BY part_id, idx",
        m=model_id,
    )
    uses = _rows(
        store,
        "MATCH (t:Template)-[u:USES]->(p:Pattern) WHERE t.model_id = $m "
        "RETURN t.template_id AS template_id, p.pattern_id AS pattern_id, p.layer AS layer, "
        "u.dx AS dx, u.dy AS dy, u.weight AS weight ORDER BY template_id, layer, weight DESC",
        m=model_id,
    )
    used: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in uses:
        used[row["template_id"]].append(row)
    out = []
    for part in parts:
        try:
            meta = json.loads(part["source"] or "{}")
        except json.JSONDecodeError:
            meta = {}
        extra = meta.get("templates", []) if isinstance(meta, dict) else []
        mine = [t for t in templates if t["part_id"] == part["part_id"]]
        for t in mine:
            index = int(t["idx"])
            info = extra[index] if index < len(extra) and isinstance(extra[index], dict) else {}
            t["flipped"] = bool(info.get("flipped", False))
            t["n_parent_links"] = info.get("n_parent_links", "–")
            t["uses"] = used.get(f"{part['part_id']}/t{index}", [])
        out.append(
            {
                "part": part["name"],
                "part_id": part["part_id"],
                "source": meta.get("source", "") if isinstance(meta, dict) else "",
                "templates": mine,
            }
        )
    return out


def model_detail_exists(store: GraphStore, model_id: str) -> None:
    """:class:`NotFound` unless ``model_id`` is in the store."""
    if not _rows(store, "MATCH (m:Model {model_id: $id}) RETURN m.model_id AS id", id=model_id):
        raise NotFound(f"no model {model_id!r} in this store")


# compare -------------------------------------------------------------------------------------


def compared_pairs(store: GraphStore) -> list[dict[str, Any]]:
    """Every (A, B) model pair with ``MATCHES`` edges from A's patterns to B's."""
    return _rows(
        store,
        "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) RETURN p.model_id AS a, q.model_id AS b, "
        "count(m) AS matches ORDER BY a, b",
    )


def compare_detail(store: GraphStore, model_a: str, model_b: str) -> dict[str, Any]:
    """The match matrix per layer pair, and per layer the patterns without a counterpart."""
    model_detail_exists(store, model_a)
    model_detail_exists(store, model_b)
    cells = _rows(
        store,
        "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) WHERE p.model_id = $a AND q.model_id = $b "
        "RETURN p.layer AS layer_a, q.layer AS layer_b, count(m) AS matches, "
        "avg(m.similarity) AS mean_similarity",
        a=model_a,
        b=model_b,
    )
    layers = {}
    for side, model in (("a", model_a), ("b", model_b)):
        layers[side] = _rows(
            store,
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.layer AS layer, count(p) AS patterns",
            m=model,
        )
        depth = {
            row["name"]: row["depth"]
            for row in _rows(
                store,
                "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name, l.depth AS depth",
                m=model,
            )
        }
        order: dict[str, int] = {str(k): int(v or 0) for k, v in depth.items()}
        layers[side].sort(key=lambda row: order.get(str(row["layer"]), 0))
    unmatched_a = _unmatched_per_layer(store, model_a, model_b)
    unmatched_b = _unmatched_per_layer(store, model_b, model_a)
    for row in layers["a"]:
        row["unmatched"] = unmatched_a.get(row["layer"], 0)
    for row in layers["b"]:
        row["unmatched"] = unmatched_b.get(row["layer"], 0)
    matrix = {(c["layer_a"], c["layer_b"]): c for c in cells}
    most = max((c["matches"] for c in cells), default=0)
    return {
        "a": model_a,
        "b": model_b,
        "layers_a": layers["a"],
        "layers_b": layers["b"],
        "matrix": matrix,
        "most": most,
        "total": sum(c["matches"] for c in cells),
    }


def _unmatched_per_layer(store: GraphStore, model_a: str, model_b: str) -> dict[str, int]:
    """Per layer of A, patterns without a ``MATCHES`` edge (either direction) to B.

    The Cypher of ``queries.compare.store.NO_COUNTERPART_CYPHER``, kept here because that
    package imports torch.
    """
    rows = _rows(
        store,
        "MATCH (p:Pattern) WHERE p.model_id = $a "
        "OPTIONAL MATCH (p)-[m:MATCHES]-(q:Pattern) WHERE q.model_id = $b "
        "WITH p, count(q) AS matches WHERE matches = 0 "
        "RETURN p.layer AS layer, count(p) AS unmatched ORDER BY layer",
        a=model_a,
        b=model_b,
    )
    return {str(row["layer"]): int(row["unmatched"]) for row in rows}


def layer_pair_matches(
    store: GraphStore, model_a: str, layer_a: str, model_b: str, layer_b: str
) -> list[dict[str, Any]]:
    """The matches between one layer of A and one of B, most similar first."""
    return _rows(
        store,
        "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) WHERE p.model_id = $a AND p.layer = $la "
        "AND q.model_id = $b AND q.layer = $lb RETURN p.pattern_id AS pattern_a, "
        "q.pattern_id AS pattern_b, m.similarity AS similarity "
        "ORDER BY similarity DESC, pattern_a LIMIT $n",
        a=model_a,
        la=layer_a,
        b=model_b,
        lb=layer_b,
        n=ROW_LIMIT,
    )


def unmatched_patterns(
    store: GraphStore, model_a: str, model_b: str, layer: str, limit: int = 60
) -> list[str]:
    """Patterns of ``layer`` in A without a counterpart in B (either direction of MATCHES)."""
    rows = _rows(
        store,
        "MATCH (p:Pattern) WHERE p.model_id = $a AND p.layer = $l "
        "OPTIONAL MATCH (p)-[m:MATCHES]-(q:Pattern) WHERE q.model_id = $b "
        "WITH p, count(q) AS matches WHERE matches = 0 "
        "RETURN p.pattern_id AS pattern_id, p.mean_score AS mean_score "
        "ORDER BY mean_score DESC, pattern_id LIMIT $n",
        a=model_a,
        b=model_b,
        l=layer,
        n=limit,
    )
    return [row["pattern_id"] for row in rows]


__all__ = [
    "LAYER_SORTS",
    "NEIGHBOURS_DRAWN",
    "PATTERN_ID",
    "ROW_LIMIT",
    "ModelCounts",
    "NotFound",
    "compare_detail",
    "compared_models",
    "compared_pairs",
    "complete_models",
    "filter_patterns",
    "image_firings",
    "image_row",
    "layer_detail",
    "layer_pair_matches",
    "model_detail",
    "model_detail_exists",
    "models_overview",
    "parts_detail",
    "pattern_detail",
    "plain",
    "sample_images",
    "sort_filters",
    "unmatched_patterns",
]
