"""One stored model as a networkx graph, GraphML or node-link JSON.

:func:`to_networkx` reads everything a model owns (its ``Model``, ``Layer``, ``Filter``,
``Pattern``, ``Part`` and ``Template`` nodes, the ``Image`` nodes its ``FIRES`` edges touch, and
every relationship among them) with one query per label and per relationship type, never one
per pattern. Node ids are the store keys; each node carries ``kind`` (its node label: ``label``
is an Image property) and each edge ``type`` (its relationship type) beside its properties.
``MATCHES`` edges to other models' patterns are left out: their far ends belong to another model.

GraphML cannot hold nulls or lists, so :func:`write_graphml` drops null properties and writes
lists (``Model.layers``) as JSON strings; ``networkx.read_graphml`` reads the file back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import networkx as nx

from explgraph.core.errors import InputError, StoreError
from graphstore import GraphStore
from graphstore.schema import NODES, RELATIONSHIPS, NodeSpec, RelSpec, node_spec


class ExportFormat(StrEnum):
    """File formats of ``explgraph export``."""

    graphml = "graphml"
    json = "json"


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    path: Path
    n_nodes: int
    n_edges: int


def _plain(value: Any) -> Any:
    """A value networkx and the JSON/GraphML writers accept (no numpy or Decimal scalars)."""
    if hasattr(value, "item") and not isinstance(value, list | tuple | str):
        return value.item()
    if type(value).__name__ == "Decimal":
        return float(value)
    return value


def _node_rows(store: GraphStore, spec: NodeSpec, model_id: str) -> list[dict[str, Any]]:
    columns = ", ".join(f"n.{name} AS {name}" for name in spec.columns)
    if spec.label == "Image":
        cypher = (
            f"MATCH (n:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $m RETURN DISTINCT {columns}"
        )
    else:
        cypher = f"MATCH (n:{spec.label}) WHERE n.model_id = $m RETURN {columns}"
    return store.query(cypher, {"m": model_id})


def _edge_rows(store: GraphStore, spec: RelSpec, model_id: str) -> list[dict[str, Any]]:
    source, target = node_spec(spec.source), node_spec(spec.target)
    owner = "r.model_id" if spec.source == "Image" else "a.model_id"
    columns = ", ".join(f"r.{p.name} AS {p.name}" for p in spec.properties)
    # MATCHES: both ends must belong to this model (the far end of a match is another model's)
    both = " AND b.model_id = $m" if spec.source == spec.target else ""
    cypher = (
        f"MATCH (a:{spec.source})-[r:{spec.type}]->(b:{spec.target}) "
        f"WHERE {owner} = $m{both} "
        f"RETURN a.{source.key} AS src, b.{target.key} AS dst" + (f", {columns}" if columns else "")
    )
    return store.query(cypher, {"m": model_id})


def to_networkx(store: GraphStore, model_id: str) -> nx.DiGraph:
    """The stored model ``model_id`` as a directed graph with every stored property.

    Raises:
        UnknownModel: no such model in the store.
        StoreError: two nodes of different labels share an id.
    """
    store.describe_model(model_id)  # UnknownModel, with the known ids
    graph = nx.DiGraph(model_id=model_id)
    for spec in NODES:
        if spec.label == "Store":  # the store's own node belongs to no model
            continue
        for row in _node_rows(store, spec, model_id):
            key = row[spec.key]
            if key in graph:
                raise StoreError(
                    f"node id {key!r} is used by a {graph.nodes[key]['kind']} and a {spec.label}:"
                    " ids must be unique across labels"
                )
            graph.add_node(key, kind=spec.label, **{k: _plain(v) for k, v in row.items()})
    for rel in RELATIONSHIPS:
        if rel.derived:  # write-time answers (e.g. TOP_PATH), not part of the mined graph
            continue
        for row in _edge_rows(store, rel, model_id):
            src, dst = row.pop("src"), row.pop("dst")
            graph.add_edge(src, dst, type=rel.type, **{k: _plain(v) for k, v in row.items()})
    return graph


def graphml_ready(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy of ``graph`` that GraphML can hold: nulls dropped, lists and dicts as JSON."""

    def clean(data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            out[key] = json.dumps(value) if isinstance(value, list | tuple | dict) else value
        return out

    ready = nx.DiGraph(**clean(dict(graph.graph)))
    ready.add_nodes_from((node, clean(data)) for node, data in graph.nodes(data=True))
    ready.add_edges_from((u, v, clean(data)) for u, v, data in graph.edges(data=True))
    return ready


def write_graphml(graph: nx.DiGraph, path: Path) -> None:
    """Write ``graph`` as GraphML (see :func:`graphml_ready` for what changes)."""
    nx.write_graphml(graphml_ready(graph), path, infer_numeric_types=True)


def write_json(graph: nx.DiGraph, path: Path) -> None:
    """Write ``graph`` as networkx node-link JSON (nulls and lists kept)."""
    data = nx.node_link_data(graph, edges="edges")
    path.write_text(json.dumps(data, indent=1, default=str))


def export_model(
    store: GraphStore, model_id: str, path: Path, fmt: ExportFormat = ExportFormat.graphml
) -> ExportSummary:
    """Export ``model_id`` to ``path`` as GraphML or node-link JSON.

    Raises:
        UnknownModel: no such model. InputError: the output folder does not exist.
    """
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"folder {path.parent} does not exist: create it or choose another path")
    graph = to_networkx(store, model_id)
    if fmt is ExportFormat.graphml:
        write_graphml(graph, path)
    else:
        write_json(graph, path)
    return ExportSummary(path, graph.number_of_nodes(), graph.number_of_edges())


__all__ = [
    "ExportFormat",
    "ExportSummary",
    "export_model",
    "graphml_ready",
    "to_networkx",
    "write_graphml",
    "write_json",
]
