"""One result format for both engines: nodes, relationships and paths as plain dicts.

- node: ``{"_label": "Pattern", <every non-null property>}``
- relationship: ``{"_type": "FIRES", <every non-null property>}``
- path: ``{"_nodes": [node, ...], "_relationships": [relationship, ...]}``

LadybugDB returns nodes as dicts with internal ``_ID``/``_LABEL`` (and ``_SRC``/``_DST`` for
relationships, ``_NODES``/``_RELS`` for paths); the Neo4j driver returns graph objects whose
``data()`` drops labels and most relationship properties. Both are mapped here, so
``RETURN f`` of a ``FIRES`` edge gives the same structure on every engine.
"""

from __future__ import annotations

from typing import Any


def _props(items: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in items.items() if k not in skip and v is not None}


def ladybug_value(value: Any) -> Any:
    """A LadybugDB result value with nodes, relationships and paths in the shared form."""
    if isinstance(value, dict):
        if "_NODES" in value and "_RELS" in value:
            return {
                "_nodes": [ladybug_value(node) for node in value["_NODES"]],
                "_relationships": [ladybug_value(rel) for rel in value["_RELS"]],
            }
        if "_LABEL" in value and "_SRC" in value and "_DST" in value:
            return {"_type": value["_LABEL"], **_props(value, ("_ID", "_LABEL", "_SRC", "_DST"))}
        if "_LABEL" in value and "_ID" in value:
            return {"_label": value["_LABEL"], **_props(value, ("_ID", "_LABEL"))}
        return {key: ladybug_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [ladybug_value(item) for item in value]
    return value


#: values the driver returns as they are: most cells of a result, so tested first
_PLAIN = frozenset({str, int, float, bool, type(None)})


def bolt_value(value: Any) -> Any:
    """A Neo4j driver result value with nodes, relationships and paths in the shared form."""
    if type(value) in _PLAIN:  # exact types: a Node is none of these
        return value
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        labels = sorted(value.labels)
        return {"_label": labels[0] if len(labels) == 1 else labels, **_props(dict(value), ())}
    if isinstance(value, Relationship):
        return {"_type": value.type, **_props(dict(value), ())}
    if isinstance(value, Path):
        return {
            "_nodes": [bolt_value(node) for node in value.nodes],
            "_relationships": [bolt_value(rel) for rel in value.relationships],
        }
    if isinstance(value, dict):
        return {key: bolt_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [bolt_value(item) for item in value]
    return value


__all__ = ["bolt_value", "ladybug_value"]
