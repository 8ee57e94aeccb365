"""Layout of a pattern's neighbourhood for the node-link view on the pattern page.

The pattern sits in the middle row; its strongest parents (the layer above) in the row above,
its strongest children (the layer below) in the row below. Edge width grows with the PARENT
edge's co-activation weight. The template draws it as SVG; every node is a link, so clicking a
node moves to that pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

WIDTH = 720
ROW_Y = (50.0, 150.0, 250.0)  # parents, the pattern, children
HEIGHT = 300


@dataclass(frozen=True)
class Node:
    """One drawn pattern."""

    pattern_id: str
    label: str
    x: float
    y: float
    role: str  # "self", "parent" or "child"

    @property
    def href(self) -> str:
        """The pattern page of this node."""
        return pattern_href(self.pattern_id)


@dataclass(frozen=True)
class Edge:
    """One drawn PARENT edge."""

    x1: float
    y1: float
    x2: float
    y2: float
    width: float
    title: str


def pattern_href(pattern_id: str) -> str:
    """URL of a pattern's page (the id keeps its slashes; everything else is quoted)."""
    return "/pattern/" + quote(pattern_id, safe="/")


def short_label(pattern_id: str) -> str:
    """``f4/p19`` of ``model/layer/f4/p19``."""
    return "/".join(pattern_id.rsplit("/", 2)[-2:])


def _row(ids: list[dict[str, Any]], y: float, role: str) -> list[tuple[Node, dict[str, Any]]]:
    step = WIDTH / (len(ids) + 1)
    return [
        (Node(row["other"], short_label(row["other"]), step * (k + 1), y, role), row)
        for k, row in enumerate(ids)
    ]


def layout(pattern: dict[str, Any], drawn: int) -> dict[str, Any]:
    """Nodes and edges of the view: the pattern, up to ``drawn`` parents and children."""
    parents = pattern["parents"][:drawn]
    children = pattern["children"][:drawn]
    centre = Node(
        pattern["pattern_id"], short_label(pattern["pattern_id"]), WIDTH / 2, ROW_Y[1], "self"
    )
    placed = _row(parents, ROW_Y[0], "parent") + _row(children, ROW_Y[2], "child")
    weights = [float(row["weight"] or 0.0) for _, row in placed] or [1.0]
    top = max(max(weights), 1e-12)
    edges = [
        Edge(
            centre.x,
            centre.y,
            node.x,
            node.y,
            1.0 + 5.0 * max(float(row["weight"] or 0.0), 0.0) / top,
            f"{node.role} {node.pattern_id}: weight {float(row['weight'] or 0.0):.3g}, "
            f"offset ({float(row['dx'] or 0.0):.1f}, {float(row['dy'] or 0.0):.1f}) px",
        )
        for node, row in placed
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "nodes": [centre, *(node for node, _ in placed)],
        "edges": edges,
        "more_parents": max(len(pattern["parents"]) - drawn, 0),
        "more_children": max(len(pattern["children"]) - drawn, 0),
        "layer_above": parents[0]["layer"] if parents else None,
        "layer_below": children[0]["layer"] if children else None,
    }


__all__ = ["Edge", "Node", "layout", "pattern_href", "short_label"]
