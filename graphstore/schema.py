"""The explanatory-graph schema, declared once and rendered for each engine.

Every label has one string primary key; every id except ``Image.image_id`` (a content hash shared
by all models) starts with the model id, so many models live side by side in one store.
Properties that later stages fill in (``Pattern.diagnosis``, ``Pattern.off_object``,
``Layer.explained_share``, ...) are declared now, so no engine ever needs an ``ALTER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from explgraph.core.errors import StoreError


class PropertyType(Enum):
    """The property types the schema uses, named as LadybugDB spells them."""

    STRING = "STRING"
    INT64 = "INT64"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    STRING_LIST = "STRING[]"


@dataclass(frozen=True)
class Property:
    """One typed property of a node label or relationship type."""

    name: str
    type: PropertyType


@dataclass(frozen=True)
class NodeSpec:
    """A node label: its primary key (always a string) and its other properties."""

    label: str
    key: str
    properties: tuple[Property, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The key followed by the property names: the column order of a bulk load."""
        return (self.key, *(p.name for p in self.properties))

    @property
    def has_model_id(self) -> bool:
        """True if nodes of this label belong to one model (everything but ``Image``, ``Store``)."""
        return any(p.name == "model_id" for p in self.properties) or self.key == "model_id"


@dataclass(frozen=True)
class RelSpec:
    """A relationship type: the labels it joins and its properties."""

    type: str
    source: str
    target: str
    properties: tuple[Property, ...] = ()
    #: computed from the other edges at write time (not mined data): exports leave it out
    derived: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """``src``, ``dst`` (the end nodes' keys) then the property names."""
        return ("src", "dst", *(p.name for p in self.properties))


def _props(*pairs: tuple[str, PropertyType]) -> tuple[Property, ...]:
    return tuple(Property(name, kind) for name, kind in pairs)


#: The store format this code writes (``Store.format_version``, ``Model.format_version``). 2: a
#: model carries what inference needs (each layer's per-unit std and filter peaks of the mining
#: images, their object boxes, the CNN's identity); 1 (``format_version`` null): everything
#: before, with those only in the mining feature cache and the training annotations.
FORMAT_VERSION = 2
#: The key of the one ``Store`` node.
STORE_KEY = "explgraph"
#: The version of the write-time answers of :mod:`graphstore.precompute` (``Model.precomputed``).
PRECOMPUTE_VERSION = 1
#: Paths stored per pattern as TOP_PATH edges: ``path-to-top`` returns at most this many.
TOP_PATHS_PER_PATTERN = 5
#: RANKED_CHILD edges kept per layer (its strongest children): ``strongest-relations`` reads
#: them for ``limit`` up to this and computes larger answers from the PARENT edges. All of a
#: VGG-16 layer's 15,360 ranked children cost the ArcadeDB peer 90 ms to expand.
RANKED_CHILDREN_PER_LAYER = 100
#: The longest path (in PARENT edges) that ``path-to-top`` follows.
MAX_PATH_EDGES = 16
#: Joins the pattern ids (and layer names) of a stored path into one string property.
PATH_SEPARATOR = "\n"
#: The grid cell (input pixels) and least mean score ``busy-filters`` is precomputed for.
BUSY_CELL = 8.0
BUSY_MIN_SCORE = 0.0

S, INT, D = PropertyType.STRING, PropertyType.INT64, PropertyType.DOUBLE

NODES: tuple[NodeSpec, ...] = (
    NodeSpec(
        "Model",
        "model_id",
        _props(
            ("architecture", S),
            ("source", S),
            ("weights", S),
            ("fingerprint", S),
            ("input_size", INT),
            ("layers", PropertyType.STRING_LIST),
            ("params", S),  # JSON: every mining parameter, so a run can be reproduced
            ("seed", INT),
            ("status", S),  # 'mining' while a write is under way, 'complete' once it finished
            ("created", S),  # ISO 8601, UTC
            ("n_images", INT),
            ("normalisation", S),
            ("interpretable", PropertyType.BOOL),  # trained with the filter loss (issue 15)
            # counts fixed at write time, so listing models never scans the graph
            ("n_layers", INT),
            ("n_filters", INT),
            ("n_patterns", INT),
            ("n_parents", INT),
            ("n_fires", INT),
            # version of the write-time answers (graphstore.precompute) the model carries;
            # null for models written before them, which the next writable open fills in
            ("precomputed", INT),
            # the store format the model was written in (FORMAT_VERSION; null: format 1)
            ("format_version", INT),
            # JSON: how to find and verify the CNN again (miner.models.identity.CnnIdentity)
            ("identity", S),
            # JSON: the object box each mining image was cropped to, by its Image.path
            ("boxes", S),
        ),
    ),
    NodeSpec(
        "Layer",
        "layer_id",
        _props(
            ("model_id", S),
            ("name", S),
            ("depth", INT),
            ("height", INT),
            ("width", INT),
            ("stride", D),
            ("rf_size", D),
            ("rf_offset", D),
            ("channels", INT),
            ("explained_share", D),
            ("interpretable", PropertyType.BOOL),  # the masked layer of an interpretable CNN
            # per-unit std [C, H, W] and mean filter peak [C] of the mining images, float32,
            # encoded by graphstore.arrays: new images are read through them (docs/method.md §2)
            ("unit_std", S),
            ("filter_peaks", S),
        ),
    ),
    NodeSpec(
        "Filter",
        "filter_id",
        _props(
            ("model_id", S),
            ("layer", S),
            ("idx", INT),
            ("n_patterns", INT),
            # busy-filters at its default grid, fixed at write time (graphstore.precompute)
            ("busy_active", INT),
            ("busy_cells", INT),
            ("busy_mean_score", D),
        ),
    ),
    NodeSpec(
        "Pattern",
        "pattern_id",
        _props(
            ("model_id", S),
            ("layer", S),
            ("filter", INT),
            ("idx", INT),
            ("mu_x", D),  # prior position, map units
            ("mu_y", D),
            ("x", D),  # mean inferred position over the training images, pixels
            ("y", D),
            ("sigma", D),
            ("mean_score", D),
            ("diagnosis", S),
            ("off_object", D),
            # the largest weight of the pattern's PARENT edges, fixed at write time, so the
            # strongest relations of a layer need only the best children's edges
            ("best_parent_weight", D),
        ),
    ),
    NodeSpec(
        "Image",
        "image_id",
        _props(
            ("path", S),
            ("width", INT),
            ("height", INT),
            ("dataset", S),
            ("label", S),
            ("split", S),
        ),
    ),
    # the store itself: one node (key STORE_KEY) with the newest format written into it
    NodeSpec("Store", "store_id", _props(("format_version", INT), ("updated", S))),
    NodeSpec("Part", "part_id", _props(("model_id", S), ("name", S), ("source", S))),
    NodeSpec(
        "Template",
        "template_id",
        _props(
            ("model_id", S),
            ("part", S),
            ("idx", INT),
            ("image_id", S),
            ("x", D),
            ("y", D),
            ("n_patterns", INT),
        ),
    ),
    # an explainer network of one layer of a stored model (graphstore.explainers); key
    # "<model>/<layer>/explainer" ("/explainer-control" for the no-filter-loss control)
    NodeSpec(
        "Explainer",
        "explainer_id",
        _props(
            ("model_id", S),
            ("layer", S),
            ("control", PropertyType.BOOL),  # trained without the filter loss
            ("n_filters", INT),  # filters per track
            ("n_images", INT),  # held-out crops the figures are measured on
            ("p_mean", D),  # the interpretable share p over those crops
            ("p_q10", D),
            ("p_q25", D),
            ("p_q50", D),
            ("p_q75", D),
            ("p_q90", D),
            ("p_histogram", S),  # JSON: counts in equal bins over [0, 1]
            ("reconstruction_error", D),
            ("agreement", D),  # top-1 agreement of the performer with its layer replaced
            ("accuracy", D),
            ("swapped_accuracy", D),
            ("mean_purity", D),  # of the interpretable filters
            ("pure_share", D),
            ("raw_mean_purity", D),  # of the performer's own filters of the layer
            ("raw_pure_share", D),
            ("source", S),  # JSON: the explainer file, its training data and settings
            ("created", S),
        ),
    ),
    # one filter of an explainer's interpretable track: its part purity and best part
    NodeSpec(
        "ExplainerFilter",
        "explainer_filter_id",
        _props(
            ("model_id", S),
            ("explainer", S),
            ("layer", S),
            ("idx", INT),
            ("purity", D),
            ("best_part", S),  # the most frequent nearest part ('none' / 'dead' possible)
        ),
    ),
)

RELATIONSHIPS: tuple[RelSpec, ...] = (
    RelSpec("HAS_LAYER", "Model", "Layer"),
    RelSpec("HAS_FILTER", "Layer", "Filter"),
    RelSpec("HAS_PATTERN", "Filter", "Pattern"),
    # child -> parent; dx, dy: expected offset of the child from the parent's mean position, px
    RelSpec(
        "PARENT", "Pattern", "Pattern", _props(("dx", D), ("dy", D), ("sigma", D), ("weight", D))
    ),
    RelSpec(
        "FIRES",
        "Image",
        "Pattern",
        _props(("model_id", S), ("x", D), ("y", D), ("score", D), ("rank", INT)),
    ),
    RelSpec("HAS_TEMPLATE", "Part", "Template"),
    RelSpec("USES", "Template", "Pattern", _props(("dx", D), ("dy", D), ("weight", D))),
    RelSpec("MATCHES", "Pattern", "Pattern", _props(("similarity", D))),
    RelSpec("HAS_EXPLAINER", "Model", "Explainer"),
    RelSpec("EXPLAINS", "Explainer", "Layer"),
    RelSpec("HAS_EXPLAINER_FILTER", "Explainer", "ExplainerFilter"),
    # layer -> each of its patterns that has parents, ranked by its strongest PARENT edge
    # (0 = strongest, ties by pattern id); fixed at write time. A relationship, not a pattern
    # property: LadybugDB filters on it before reading any pattern property
    RelSpec("RANKED_CHILD", "Layer", "Pattern", _props(("rank", INT)), derived=True),
    # model -> each pattern whose diagnosis is a flaw (not null, not 'ok'); rebuilt whenever
    # diagnoses are written (GraphStore.write_nodes)
    RelSpec("FLAGGED", "Model", "Pattern", derived=True),
    # pattern -> a pattern without parents: one of its strongest PARENT paths up (rank 0 =
    # strongest), with the path's pattern ids and layers, each joined by PATH_SEPARATOR (list
    # properties cost LadybugDB ten times the write); fixed at write time
    RelSpec(
        "TOP_PATH",
        "Pattern",
        "Pattern",
        _props(("rank", INT), ("weight", D), ("patterns", S), ("layers", S)),
        derived=True,
    ),
)

_NODES_BY_LABEL = {spec.label: spec for spec in NODES}
_RELS_BY_TYPE = {spec.type: spec for spec in RELATIONSHIPS}


_Spec = TypeVar("_Spec", NodeSpec, RelSpec)


def _declared(table: dict[str, _Spec], name: str, kind: str) -> _Spec:
    """``table[name]``; :class:`StoreError` naming the known ``kind`` names if none."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(table)
        raise StoreError(f"unknown {kind} {name!r}: use one of {known}") from None


def node_spec(label: str) -> NodeSpec:
    """The declaration of ``label``; :class:`StoreError` naming the known labels if none."""
    return _declared(_NODES_BY_LABEL, label, "node label")


def rel_spec(rel_type: str) -> RelSpec:
    """The declaration of ``rel_type``; :class:`StoreError` naming the known types if none."""
    return _declared(_RELS_BY_TYPE, rel_type, "relationship type")


#: Properties added after the first release: stores created before get them with ``ALTER``.
ADDED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Model": (
        "interpretable",
        "n_layers",
        "n_filters",
        "n_patterns",
        "n_parents",
        "n_fires",
        "precomputed",
        "format_version",
        "identity",
        "boxes",
    ),
    "Layer": ("interpretable", "unit_std", "filter_peaks"),
    "Filter": ("busy_active", "busy_cells", "busy_mean_score"),
    "Pattern": ("best_parent_weight",),
}


def ladybug_ddl() -> list[str]:
    """``CREATE NODE/REL TABLE IF NOT EXISTS`` statements, node tables first, then an
    ``ALTER TABLE … ADD IF NOT EXISTS`` for each property of :data:`ADDED_PROPERTIES`."""
    statements = []
    for node in NODES:
        columns = [f"{node.key} STRING"] + [f"{p.name} {p.type.value}" for p in node.properties]
        statements.append(
            f"CREATE NODE TABLE IF NOT EXISTS {node.label}"
            f"({', '.join(columns)}, PRIMARY KEY ({node.key}))"
        )
    for rel in RELATIONSHIPS:
        columns = [f"FROM {rel.source} TO {rel.target}"]
        columns += [f"{p.name} {p.type.value}" for p in rel.properties]
        statements.append(f"CREATE REL TABLE IF NOT EXISTS {rel.type}({', '.join(columns)})")
    for label, names in ADDED_PROPERTIES.items():
        types = {p.name: p.type for p in node_spec(label).properties}
        statements += [
            f"ALTER TABLE {label} ADD IF NOT EXISTS {name} {types[name].value}" for name in names
        ]
    return statements


def cypher_constraints() -> list[str]:
    """Neo4j 5 constraints and indexes (``IF NOT EXISTS``): one unique key per label, then an
    index on ``model_id`` wherever it exists, since every per-model read and delete filters on it.
    """
    statements = [
        f"CREATE CONSTRAINT {node.label.lower()}_key IF NOT EXISTS "
        f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
        for node in NODES
    ]
    statements += [
        f"CREATE INDEX {node.label.lower()}_model IF NOT EXISTS "
        f"FOR (n:{node.label}) ON (n.model_id)"
        for node in NODES
        if node.key != "model_id" and node.has_model_id
    ]
    return statements


def cypher_node_rows(label: str) -> str:
    """The Cypher that creates one ``label`` node per row of ``$rows`` (every column set)."""
    assignments = ", ".join(f"n.{name} = r.{name}" for name in node_spec(label).columns)
    return f"UNWIND $rows AS r CREATE (n:{label}) SET {assignments}"


def cypher_relationship_rows(rel_type: str, verb: str) -> str:
    """The Cypher that writes one ``rel_type`` edge per row of ``$rows`` (``src``, ``dst`` and
    the properties); ``verb`` is ``CREATE`` or ``MERGE``."""
    spec = rel_spec(rel_type)
    src_key, dst_key = node_spec(spec.source).key, node_spec(spec.target).key
    statement = (
        f"UNWIND $rows AS r MATCH (a:{spec.source} {{{src_key}: r.src}}) "
        f"MATCH (b:{spec.target} {{{dst_key}: r.dst}}) {verb} (a)-[e:{rel_type}]->(b)"
    )
    if spec.properties:
        statement += " SET " + ", ".join(f"e.{p.name} = r.{p.name}" for p in spec.properties)
    return statement


__all__ = [
    "BUSY_CELL",
    "BUSY_MIN_SCORE",
    "FORMAT_VERSION",
    "MAX_PATH_EDGES",
    "NODES",
    "PATH_SEPARATOR",
    "PRECOMPUTE_VERSION",
    "RANKED_CHILDREN_PER_LAYER",
    "RELATIONSHIPS",
    "STORE_KEY",
    "TOP_PATHS_PER_PATTERN",
    "NodeSpec",
    "Property",
    "PropertyType",
    "RelSpec",
    "cypher_constraints",
    "cypher_node_rows",
    "cypher_relationship_rows",
    "ladybug_ddl",
    "node_spec",
    "rel_spec",
]
