"""The And-Or graph of one semantic part, and its home in the graph store.

Store layout (graphstore.schema): ``(:Part {part_id: "<model>/part/<name>"})-[:HAS_TEMPLATE]->
(:Template {template_id: "<model>/part/<name>/t<k>"})-[:USES {dx, dy, weight}]->(:Pattern)``.
``Template.x/y`` is the annotated part centre and ``USES.dx/dy`` the offset part − p̂, both in
model-input (object-crop) pixels of the template's canonical orientation (the one the graph read
the annotated image in). ``Part.source`` is a JSON object with the shots' origin, every
selection setting and, per template, how many candidates each layer had and kept and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from explgraph.core.errors import StoreError
from graphstore import GraphStore
from queries.aog.select import SelectionSettings

USES_COLUMNS = ("template", "pattern_id", "layer", "idx", "dx", "dy", "weight")


@dataclass
class TemplateInfo:
    """One AND node: a pose of the part, started by one or more annotations."""

    index: int
    image_id: str
    image_path: str
    x: float  # part centre, crop pixels, canonical orientation
    y: float
    flipped: bool = False  # the annotated image was read mirrored
    n_annotations: int = 1
    cuts: list[dict[str, Any]] = field(default_factory=list)
    n_parent_links: int = 0  # PARENT edges among the kept patterns


@dataclass
class AndOrGraph:
    """A part's OR node, its templates and their latent patterns (``uses``: one row per USES)."""

    model_id: str
    part: str
    input_size: int
    settings: SelectionSettings
    templates: list[TemplateInfo]
    uses: pd.DataFrame  # USES_COLUMNS (+ confidence, spread, fire_images when just built)
    source: str = ""
    normalisation: str = "mined"
    # [A, D] unit hypercolumns at the shots' part, each in its template's frame (see
    # queries.aog.appearance); None for AOGs stored before the appearance check existed
    descriptors: np.ndarray | None = None

    @property
    def part_id(self) -> str:
        """Store key of the Part node."""
        return part_id(self.model_id, self.part)

    def template_id(self, index: int) -> str:
        """Store key of template ``index``."""
        return f"{self.part_id}/t{index}"

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: templates, kept patterns per layer, the cuts."""
        return {
            "model_id": self.model_id,
            "part": self.part,
            "part_id": self.part_id,
            "source": self.source,
            "normalisation": self.normalisation,
            "settings": self.settings.to_dict(),
            "templates": [
                {
                    "template_id": self.template_id(t.index),
                    "image": t.image_path,
                    "x": t.x,
                    "y": t.y,
                    "flipped": t.flipped,
                    "n_annotations": t.n_annotations,
                    "n_patterns": int((self.uses["template"] == t.index).sum()),
                    "n_parent_links": t.n_parent_links,
                    "layers": t.cuts,
                }
                for t in self.templates
            ],
        }


def part_id(model_id: str, part: str) -> str:
    """Store key of a part's OR node."""
    return f"{model_id}/part/{part}"


def write_aog(store: GraphStore, aog: AndOrGraph) -> None:
    """Replace the part's AOG in the store (Part, Template, HAS_TEMPLATE, USES)."""
    store.ensure_schema()
    remove_aog(store, aog.model_id, aog.part)
    summary = aog.summary()
    source = json.dumps(
        {k: summary[k] for k in ("source", "normalisation", "settings")}
        | {
            "input_size": aog.input_size,
            "templates": [
                {k: t[k] for k in ("image", "flipped", "n_annotations", "n_parent_links", "layers")}
                for t in summary["templates"]
            ],
        }
        | (
            {}
            if aog.descriptors is None
            else {"descriptors": np.asarray(aog.descriptors, np.float64).round(6).tolist()}
        ),
        sort_keys=True,
        default=str,
    )
    store.write_nodes(
        "Part",
        pd.DataFrame(
            {"part_id": [aog.part_id], "model_id": aog.model_id, "name": aog.part, "source": source}
        ),
    )
    counts = aog.uses.groupby("template").size()
    templates = pd.DataFrame(
        {
            "template_id": [aog.template_id(t.index) for t in aog.templates],
            "model_id": aog.model_id,
            "part": aog.part,
            "idx": [t.index for t in aog.templates],
            "image_id": [t.image_id for t in aog.templates],
            "x": [float(t.x) for t in aog.templates],
            "y": [float(t.y) for t in aog.templates],
            "n_patterns": [int(counts.get(t.index, 0)) for t in aog.templates],
        }
    )
    store.write_nodes("Template", templates)
    store.write_relationships(
        "HAS_TEMPLATE", pd.DataFrame({"src": aog.part_id, "dst": templates["template_id"]})
    )
    uses = aog.uses
    store.write_relationships(
        "USES",
        pd.DataFrame(
            {
                "src": [aog.template_id(int(t)) for t in uses["template"]],
                "dst": uses["pattern_id"].to_numpy(),
                "dx": uses["dx"].to_numpy(np.float64),
                "dy": uses["dy"].to_numpy(np.float64),
                "weight": uses["weight"].to_numpy(np.float64),
            }
        ),
    )


def remove_aog(store: GraphStore, model_id: str, part: str) -> None:
    """Delete a part's AOG (nothing happens if there is none)."""
    store.query(
        "MATCH (t:Template) WHERE t.model_id = $m AND t.part = $p DETACH DELETE t",
        {"m": model_id, "p": part},
        write=True,
    )
    store.query(
        "MATCH (a:Part) WHERE a.part_id = $id DETACH DELETE a",
        {"id": part_id(model_id, part)},
        write=True,
    )


def list_parts(store: GraphStore, model_id: str) -> list[str]:
    """Names of the parts that have an AOG for ``model_id``."""
    rows = store.query(
        "MATCH (a:Part) WHERE a.model_id = $m RETURN a.name AS name ORDER BY name", {"m": model_id}
    )
    return [str(row["name"]) for row in rows]


def _template_infos(rows: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[TemplateInfo]:
    """Template nodes joined with what the Part's ``source`` records about each template."""
    templates = []
    for row in rows:
        index = int(row["idx"])
        info = extra[index] if index < len(extra) else {}
        templates.append(
            TemplateInfo(
                index=index,
                image_id=str(row["image_id"]),
                image_path=str(info.get("image", "")),
                x=float(row["x"]),
                y=float(row["y"]),
                flipped=bool(info.get("flipped", False)),
                n_annotations=int(info.get("n_annotations", 1)),
                cuts=list(info.get("layers", [])),
                n_parent_links=int(info.get("n_parent_links", 0)),
            )
        )
    return templates


def load_aog(store: GraphStore, model_id: str, part: str) -> AndOrGraph:
    """Read a part's AOG back from the store.

    Raises:
        StoreError: there is no AOG for that part (the message lists the parts that have one).
    """
    rows = store.query(
        "MATCH (a:Part {part_id: $id}) RETURN a.source AS source", {"id": part_id(model_id, part)}
    )
    if not rows:
        known = ", ".join(list_parts(store, model_id)) or "none"
        raise StoreError(
            f"no And-Or graph for part {part!r} of {model_id}; parts with one: {known}. "
            "Build it with `explgraph aog build`"
        )
    meta = json.loads(rows[0]["source"] or "{}")
    template_rows = store.query(
        "MATCH (a:Part {part_id: $id})-[:HAS_TEMPLATE]->(t:Template) "
        "RETURN t.idx AS idx, t.image_id AS image_id, t.x AS x, t.y AS y ORDER BY idx",
        {"id": part_id(model_id, part)},
    )
    use_rows = store.query(
        "MATCH (a:Part {part_id: $id})-[:HAS_TEMPLATE]->(t:Template)-[u:USES]->(p:Pattern) "
        "RETURN t.idx AS template, p.pattern_id AS pattern_id, p.layer AS layer, p.idx AS idx, "
        "u.dx AS dx, u.dy AS dy, u.weight AS weight",
        {"id": part_id(model_id, part)},
    )
    templates = _template_infos(template_rows, meta.get("templates", []))
    uses = pd.DataFrame(use_rows, columns=list(USES_COLUMNS))
    uses = uses.astype({"template": np.int64, "idx": np.int64}).sort_values(
        ["template", "layer", "weight"], ascending=[True, True, False], kind="stable"
    )
    return AndOrGraph(
        model_id=model_id,
        part=part,
        input_size=int(meta.get("input_size", 0)),
        settings=SelectionSettings.from_dict(meta.get("settings", {})),
        templates=templates,
        uses=uses.reset_index(drop=True),
        source=str(meta.get("source", "")),
        normalisation=str(meta.get("normalisation", "mined")),
        descriptors=(
            np.asarray(meta["descriptors"], np.float32) if meta.get("descriptors") else None
        ),
    )


__all__ = [
    "USES_COLUMNS",
    "AndOrGraph",
    "TemplateInfo",
    "list_parts",
    "load_aog",
    "part_id",
    "remove_aog",
    "write_aog",
]
