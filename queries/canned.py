"""Canned queries: named, documented, parameterised Cypher over a stored explanatory graph.

Each :class:`CannedQuery` is one Cypher text that LadybugDB and Neo4j-compatible Bolt servers
both accept; only where the dialects cannot meet does a query carry an engine variant (the path
query: LadybugDB has no list comprehension or ``reduce``, Neo4j has no two-argument
``properties``). Run one with :func:`run_canned`, or from the terminal with
``explgraph query NAME --param name=value`` (``explgraph query --list`` lists them).

Example:
    >>> from graphstore import open_store
    >>> with open_store("explgraph-store", read_only=True) as store:  # doctest: +SKIP
    ...     rows = run_canned(store, "filter-patterns",
    ...                       {"model": "toy_vgg-bird", "layer": "block4_conv2", "filter": 3})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from explgraph.core.errors import InputError
from graphstore import GraphStore
from graphstore.schema import (
    BUSY_CELL,
    BUSY_MIN_SCORE,
    RANKED_CHILDREN_PER_LAYER,
    TOP_PATHS_PER_PATTERN,
)
from queries.known import check_names

_REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class QueryParam:
    """One parameter of a canned query: its name, what it means, and its default."""

    name: str
    help: str
    default: Any = _REQUIRED
    #: the largest value accepted (for numbers the store answers only up to a bound)
    maximum: int | None = None

    @property
    def required(self) -> bool:
        """True when the caller must give a value."""
        return self.default is _REQUIRED


@dataclass(frozen=True)
class CannedQuery:
    """A named Cypher statement with documented parameters.

    ``variants`` maps an engine name (``GraphStore.engine``) to the text used there instead of
    ``cypher``; empty for almost every query.
    """

    name: str
    summary: str
    cypher: str
    params: tuple[QueryParam, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    #: parameter values whose answer the store fixed at write time, which ``cypher`` reads;
    #: any other value runs ``general`` (which computes it) instead
    precomputed_for: Mapping[str, Any] = field(default_factory=dict)
    #: the same for numbers the store answers only up to a bound (``limit`` up to the rows kept)
    precomputed_upto: Mapping[str, int] = field(default_factory=dict)
    general: CannedQuery | None = None

    def text_for(self, engine: str, bound: Mapping[str, Any] | None = None) -> str:
        """The Cypher text to run on ``engine`` with the ``bound`` parameters."""
        if self.general is not None and bound is not None and not self.reads_precomputed(bound):
            return self.general.text_for(engine)
        return self.variants.get(engine, self.cypher)

    def reads_precomputed(self, bound: Mapping[str, Any]) -> bool:
        """True when ``cypher`` answers ``bound`` from values fixed at write time."""
        return all(
            bound.get(name) == value for name, value in self.precomputed_for.items()
        ) and all(
            isinstance(bound.get(name), int) and bound[name] <= most
            for name, most in self.precomputed_upto.items()
        )

    def bind(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` completed with defaults.

        Raises:
            InputError: a required parameter is missing, or an unknown one is given.
        """
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            raise InputError(
                f"query {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"it takes: {self.signature() or 'none'}"
            )
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                value = given[param.name]
                # LadybugDB types a null parameter as BOOL, so "any" is the empty string
                bound[param.name] = "" if value is None and param.default == "" else value
            elif param.required:
                raise InputError(
                    f"query {self.name!r} needs --param {param.name}=... ({param.help}); "
                    f"it takes: {self.signature()}"
                )
            else:
                bound[param.name] = param.default
            value = bound[param.name]
            if param.maximum is not None and isinstance(value, int) and value > param.maximum:
                raise InputError(
                    f"query {self.name!r} takes {param.name} <= {param.maximum} ({param.help}); "
                    f"got {value}: pass --param {param.name}={param.maximum} or less"
                )
        return bound

    def signature(self) -> str:
        """The parameters as ``model layer [limit=10]``."""
        return " ".join(p.name if p.required else f"[{p.name}={p.default!r}]" for p in self.params)


def _param(
    name: str, help_text: str, default: Any = _REQUIRED, *, maximum: int | None = None
) -> QueryParam:
    return QueryParam(name, help_text, default, maximum)


_MODEL = _param("model", "model id")
_PATTERN = _param("pattern", "pattern id, e.g. <model>/<layer>/f<F>/p<K>")
_LIMIT = _param("limit", "most rows returned", 10)

# the strongest paths are fixed at write time as TOP_PATH edges (graphstore.precompute): a
# traversal enumerated every path (18^3 from a bottom-layer pattern of a VGG-16 graph)
_PATH = (
    "MATCH (p:Pattern {pattern_id: $pattern})-[t:TOP_PATH]->(:Pattern) "
    "WHERE t.rank < $limit "
    "RETURN {split}(t.patterns, '\\n') AS patterns, {split}(t.layers, '\\n') AS layers, "
    "t.weight AS weight ORDER BY t.rank"
)

_FILTER_PATTERNS = (
    "{anchor} MATCH (f)-[:HAS_PATTERN]->(p:Pattern) "
    "RETURN p.pattern_id AS pattern_id, p.idx AS idx, p.x AS x, p.y AS y, "
    "p.mu_x AS mu_x, p.mu_y AS mu_y, p.sigma AS sigma, p.mean_score AS mean_score "
    "ORDER BY mean_score DESC, pattern_id"
)
# the filter first (a few thousand rows), then its patterns: no pattern scan
_FILTER_BY_MODEL = (
    "MATCH (f:Filter) WHERE f.model_id = $model AND f.layer = $layer AND f.idx = $filter"
)
# the layer (a handful per model), then its filters: the ArcadeDB peer filtered all of a
# model's filters through its model_id index (VGG-16: 2,048 rows, 22 -> 13 ms p50)
_FILTER_VIA_LAYER = (
    "MATCH (l:Layer) WHERE l.model_id = $model AND l.name = $layer "
    "MATCH (l)-[:HAS_FILTER]->(f:Filter) WHERE f.idx = $filter"
)

_RELATIONS_PARENTS = (
    "MATCH (p:Pattern {pattern_id: $pattern})-[r:PARENT]->(o:Pattern) "
    "RETURN 'parent' AS relation, o.pattern_id AS other, o.layer AS layer, "
    "r.dx AS dx, r.dy AS dy, r.sigma AS sigma, r.weight AS weight"
)
_RELATIONS_CHILDREN = (
    # anchored on the pattern: written child-first, the ArcadeDB peer scanned every pattern
    "MATCH (p:Pattern {pattern_id: $pattern})<-[r:PARENT]-(o:Pattern) "
    "RETURN 'child' AS relation, o.pattern_id AS other, o.layer AS layer, "
    "r.dx AS dx, r.dy AS dy, r.sigma AS sigma, r.weight AS weight"
)

# Only the `limit` children with the strongest best edge can hold the `limit` strongest edges;
# their rank in the layer is fixed at write time (RANKED_CHILD edges), so no pattern or edge scan
_STRONGEST = (
    # one MATCH: LadybugDB then expands from the few ranked children instead of joining all
    "MATCH (l:Layer)-[b:RANKED_CHILD]->(c:Pattern)-[r:PARENT]->(q:Pattern) "
    "WHERE l.model_id = $model AND l.name = $layer AND b.rank < $limit "
    "RETURN c.pattern_id AS child, q.pattern_id AS parent, r.weight AS weight, "
    "r.dx AS dx, r.dy AS dy ORDER BY weight DESC, child, parent LIMIT $limit"
)
# a limit beyond the ranked children kept: every edge of the layer's patterns
_STRONGEST_COMPUTED = (
    "MATCH (c:Pattern)-[r:PARENT]->(q:Pattern) WHERE c.model_id = $model AND c.layer = $layer "
    "RETURN c.pattern_id AS child, q.pattern_id AS parent, r.weight AS weight, "
    "r.dx AS dx, r.dy AS dy ORDER BY weight DESC, child, parent LIMIT $limit"
)
_STRONGEST_SUMMARY = "The strongest co-activation (PARENT) edges whose child lies in a layer."
_STRONGEST_PARAMS = (_MODEL, _param("layer", "layer name of the child patterns"), _LIMIT)

# busy-filters at its default grid and score is fixed per filter at write time
_BUSY_PRECOMPUTED = (
    "MATCH (f:Filter) WHERE f.model_id = $model AND ($layer = '' OR f.layer = $layer) "
    "AND f.busy_active > 0 "
    "RETURN f.layer AS layer, f.idx AS filter, f.busy_cells AS n_distinct, "
    "f.busy_active AS active, f.busy_mean_score AS mean_score "
    "ORDER BY n_distinct DESC, active DESC, layer, filter LIMIT $limit"
)
_BUSY_COMPUTED = (
    "MATCH (p:Pattern) WHERE p.model_id = $model "
    "AND ($layer = '' OR p.layer = $layer) AND p.mean_score >= $min_score "
    "RETURN p.layer AS layer, p.filter AS filter, "
    "count(DISTINCT floor(p.x / $cell) * 1000000.0 + floor(p.y / $cell)) AS n_distinct, "
    "count(p) AS active, avg(p.mean_score) AS mean_score "
    "ORDER BY n_distinct DESC, active DESC, layer, filter LIMIT $limit"
)
_BUSY_PARAMS = (
    _MODEL,
    _param("layer", "layer name (empty: every layer)", ""),
    _param("cell", "grid cell side in input pixels", BUSY_CELL),
    _param("min_score", "least mean score of a counted pattern", BUSY_MIN_SCORE),
    _LIMIT,
)
_BUSY_SUMMARY = (
    "Filters that hold many distinct patterns: patterns with mean score >= min_score, "
    "counted once per cell of a cell-pixel grid over their mean positions (so two "
    "patterns sitting on the same spot count once)."
)

_EXPLAINED_LAYERS = (
    "MATCH (m:Model)-[:HAS_EXPLAINER]->(e:Explainer)-[:EXPLAINS]->(l:Layer) "
    "WHERE $model = '' OR m.model_id = $model "
    "RETURN m.model_id AS model, l.name AS layer, l.depth AS depth, e.control AS control, "
    "e.p_mean AS p_mean, e.p_q50 AS p_median, e.reconstruction_error AS reconstruction_error, "
    "e.agreement AS agreement, e.accuracy AS accuracy, e.swapped_accuracy AS swapped_accuracy, "
    "e.mean_purity AS mean_purity, e.raw_mean_purity AS raw_mean_purity, "
    "e.n_filters AS n_filters, e.n_images AS n_images "
    "ORDER BY model, depth, layer, control"
)
# 'none' and 'dead': filters whose top images sit near no part, or that never fire
_EXPLAINER_PARTS = (
    "MATCH (e:Explainer)-[:HAS_EXPLAINER_FILTER]->(f:ExplainerFilter) "
    "WHERE e.model_id = $model AND ($layer = '' OR e.layer = $layer) "
    "AND f.purity >= $min_purity AND f.best_part <> 'none' AND f.best_part <> 'dead' "
    "RETURN e.layer AS layer, e.control AS control, f.best_part AS part, "
    "count(f) AS n_filters, collect(f.idx) AS filters, avg(f.purity) AS mean_purity, "
    "max(f.purity) AS best_purity "
    "ORDER BY layer, control, n_filters DESC, part"
)
_DIAGNOSED = (
    "MATCH (m:Model {{model_id: $model}})-[e:FLAGGED]->(p:Pattern) {hint}"
    "WITH p WHERE $diagnosis = '' OR p.diagnosis = $diagnosis "
    "RETURN p.pattern_id AS pattern_id, p.layer AS layer, p.diagnosis AS diagnosis, "
    "p.off_object AS off_object, p.mean_score AS mean_score "
    "ORDER BY off_object DESC, pattern_id LIMIT $limit"
)

CANNED: dict[str, CannedQuery] = {
    q.name: q
    for q in (
        CannedQuery(
            "models",
            "Models in the store with their numbers of layers, filters, patterns, PARENT and "
            "FIRES edges.",
            # the counts are fixed on the Model node at write time (no graph scan)
            "MATCH (m:Model) WHERE NOT m.model_id ENDS WITH '~staging' "
            "RETURN m.model_id AS model_id, m.architecture AS architecture, "
            "m.status AS status, m.n_layers AS layers, m.n_filters AS filters, "
            "m.n_patterns AS patterns, m.n_parents AS parents, m.n_fires AS fires "
            "ORDER BY model_id",
        ),
        CannedQuery(
            "filter-patterns",
            "The patterns of one filter: prior and mean positions, spread and mean score, "
            "strongest first.",
            _FILTER_PATTERNS.format(anchor=_FILTER_VIA_LAYER),
            (_MODEL, _param("layer", "layer name"), _param("filter", "filter index")),
            variants={"ladybug": _FILTER_PATTERNS.format(anchor=_FILTER_BY_MODEL)},
        ),
        CannedQuery(
            "busy-filters",
            _BUSY_SUMMARY,
            # at the default cell and min_score the figures are stored per filter
            _BUSY_PRECOMPUTED,
            _BUSY_PARAMS,
            precomputed_for={"cell": BUSY_CELL, "min_score": BUSY_MIN_SCORE},
            general=CannedQuery("busy-filters", _BUSY_SUMMARY, _BUSY_COMPUTED, _BUSY_PARAMS),
        ),
        CannedQuery(
            "pattern-relations",
            "A pattern's parents (layer above) and children (layer below) with the spatial "
            "offset child - parent (dx, dy in input pixels), spread and co-activation weight; "
            "parents first, strongest first.",
            "CALL { " + _RELATIONS_PARENTS + " UNION ALL " + _RELATIONS_CHILDREN + " } "
            "RETURN relation, other, layer, dx, dy, sigma, weight "
            "ORDER BY relation DESC, weight DESC, other",
            (_PATTERN,),
            # LadybugDB has no CALL subquery; ORDER BY per branch gives the same order
            variants={
                "ladybug": _RELATIONS_PARENTS
                + " ORDER BY weight DESC, other UNION ALL "
                + _RELATIONS_CHILDREN
                + " ORDER BY weight DESC, other"
            },
        ),
        CannedQuery(
            "strongest-relations",
            _STRONGEST_SUMMARY,
            _STRONGEST,
            _STRONGEST_PARAMS,
            precomputed_upto={"limit": RANKED_CHILDREN_PER_LAYER},
            general=CannedQuery(
                "strongest-relations", _STRONGEST_SUMMARY, _STRONGEST_COMPUTED, _STRONGEST_PARAMS
            ),
        ),
        CannedQuery(
            "pattern-top-images",
            "The images a pattern fires on most strongly, with its position there "
            "(original-image pixels).",
            "MATCH (i:Image)-[f:FIRES]->(p:Pattern {pattern_id: $pattern}) "
            "RETURN i.image_id AS image_id, i.path AS path, f.x AS x, f.y AS y, "
            "f.score AS score, f.rank AS rank ORDER BY score DESC, image_id LIMIT $limit",
            (_PATTERN, _LIMIT),
        ),
        CannedQuery(
            "image-patterns",
            "The patterns that fire on an image (given by image id or stored path), best "
            "first within each layer.",
            # the image first, the optional layer test after a WITH: either way LadybugDB
            # would scan every FIRES edge (30x slower)
            "MATCH (i:Image) WHERE i.image_id = $image OR i.path = $image "
            "MATCH (i)-[f:FIRES]->(p:Pattern) WHERE f.model_id = $model AND f.rank < $top "
            "WITH p, f WHERE $layer = '' OR p.layer = $layer "
            "RETURN p.layer AS layer, p.pattern_id AS pattern_id, f.rank AS rank, "
            "f.x AS x, f.y AS y, f.score AS score ORDER BY layer, rank",
            (
                _MODEL,
                _param("image", "image id (content hash) or the stored path"),
                _param("layer", "layer name (empty: every layer)", ""),
                _param("top", "patterns per layer (by rank within the image)", 20),
            ),
        ),
        CannedQuery(
            "path-to-top",
            "The paths of PARENT edges that link a pattern to the top layer, strongest "
            "(largest summed co-activation weight) first.",
            _PATH.replace("{split}", "split"),
            (
                _PATTERN,
                _param(
                    "limit",
                    f"most paths returned (at most {TOP_PATHS_PER_PATTERN}: the paths stored "
                    "per pattern)",
                    3,
                    maximum=TOP_PATHS_PER_PATTERN,
                ),
            ),
            variants={"ladybug": _PATH.replace("{split}", "string_split")},
        ),
        CannedQuery(
            "part-patterns",
            "The patterns an And-Or-graph part uses, per template, with the offset to the "
            "part centre and the weight.",
            "MATCH (pt:Part)-[:HAS_TEMPLATE]->(t:Template) "
            "WHERE pt.model_id = $model AND pt.name = $part "
            "MATCH (t)-[u:USES]->(p:Pattern) "
            "RETURN t.template_id AS template_id, t.idx AS template, p.pattern_id AS pattern_id, "
            "p.layer AS layer, u.dx AS dx, u.dy AS dy, u.weight AS weight "
            "ORDER BY template, weight DESC, pattern_id",
            (_MODEL, _param("part", "semantic part name, e.g. head")),
        ),
        CannedQuery(
            "explained-layers",
            "How interpretable each explained layer of each model is: its explainer network's "
            "interpretable share p (mean, median), reconstruction error, the model's top-1 "
            "agreement with the layer replaced, and the part purity of the explainer's filters "
            "next to the layer's own (explgraph explain-net evaluate --model).",
            _EXPLAINED_LAYERS,
            (_param("model", "model id (empty: every model)", ""),),
        ),
        CannedQuery(
            "explainer-parts",
            "Which parts an explainer's interpretable filters cover: per layer and part, the "
            "filters whose best part it is (purity >= min_purity), with their purity.",
            _EXPLAINER_PARTS,
            (
                _MODEL,
                _param("layer", "layer name (empty: every explained layer)", ""),
                _param("min_purity", "least part purity of a filter counted", 0.0),
            ),
        ),
        CannedQuery(
            "diagnosed-patterns",
            "Patterns that explgraph diagnose flagged (diagnosis 'background', 'unstable' or "
            "'background+unstable'), most off-object first.",
            # the flawed patterns are linked from their model when diagnoses are written
            _DIAGNOSED.format(hint=""),
            (_MODEL, _param("diagnosis", "only this verdict (empty: any flaw)", ""), _LIMIT),
            # without the hint LadybugDB joins the whole Pattern table (5x slower)
            variants={"ladybug": _DIAGNOSED.format(hint="HINT (m JOIN e) JOIN p ")},
        ),
    )
}


def get_canned(name: str) -> CannedQuery:
    """The canned query called ``name``.

    Raises:
        InputError: no such query; the message lists the known names.
    """
    try:
        return CANNED[name]
    except KeyError:
        raise InputError(
            f"no canned query {name!r}; known: {', '.join(CANNED)} (see explgraph query --list)"
        ) from None


def canned_texts(engine: str) -> list[tuple[str, str]]:
    """``(name, cypher)`` of every text a canned query can send on ``engine``: each query's
    own, then the general text of those that read a precomputed answer for some values."""
    texts = [(query.name, query.text_for(engine)) for query in CANNED.values()]
    texts += [
        (f"{query.name} (general)", query.general.text_for(engine))
        for query in CANNED.values()
        if query.general is not None
    ]
    return texts


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``["k=v", ...]`` as a parameter dict; each value is JSON if it parses, else a string.

    Example:
        >>> parse_params(["n=3", "name=conv5_3", "ids=[1, 2]"])
        {'n': 3, 'name': 'conv5_3', 'ids': [1, 2]}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InputError(f"bad --param {pair!r}: write it as name=value, e.g. --param k=5")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _plain(value: Any) -> Any:
    # LadybugDB returns integer sums as Decimal; callers expect plain numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def run_canned(
    store: GraphStore, name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run canned query ``name`` with ``params`` (defaults filled in) read-only on ``store``.

    An empty answer is checked for the reason a typo would give: a model, layer, image or
    pattern that the store does not hold is an error naming a few that it does.

    Raises:
        InputError: unknown query, missing or unknown parameter; an unknown layer, image or
            pattern.
        UnknownModel: an unknown model.
        StoreError: the engine refused the query.
    """
    query = get_canned(name)
    bound = query.bind(params or {})
    rows = store.query(query.text_for(store.engine, bound), bound)
    if not rows:
        check_names(store, bound)
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


__all__ = [
    "CANNED",
    "CannedQuery",
    "QueryParam",
    "canned_texts",
    "get_canned",
    "parse_params",
    "run_canned",
]
