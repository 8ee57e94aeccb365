"""One model in one file: ``explgraph store pack`` / ``store unpack``.

A pack is a zip archive: ``manifest.json`` (the pack format :data:`PACK_FORMAT`, the store
format the model was written in, the model id, the row count of each table) and one Parquet
table per node label and relationship type of the model: its ``Model``, ``Layer``, ``Filter``,
``Pattern``, ``Part``, ``Template``, ``Explainer`` and ``ExplainerFilter`` nodes, the ``Image``
nodes its ``FIRES`` edges touch, its ``PARENT``, ``FIRES``, ``HAS_TEMPLATE``, ``USES``,
``HAS_EXPLAINER``, ``EXPLAINS`` and ``HAS_EXPLAINER_FILTER`` edges and the ``MATCHES`` edges of
the comparisons it is part of. The derived edges (``RANKED_CHILD``, ``TOP_PATH``, ``FLAGGED``)
are left out: the target store computes them when it writes the model.

Unpacking writes the model with :meth:`GraphStore.write_model` (its AOGs, explainers and
comparisons as ``extras`` of the same write): the replace protocol the miner uses, so a crash
leaves the target's old state or the new one. ``MATCHES`` edges whose far end (another model's
pattern) the target lacks are left out, and said so. A pack of format 1 (before explainers)
lacks their tables: it unpacks as a model without explainers.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explgraph.core.errors import InputError, StoreError
from graphstore.lifecycle import GraphStore, WriteStep
from graphstore.schema import FORMAT_VERSION, node_spec, rel_spec
from graphstore.versions import mark_store_format, model_format_version

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from graphstore.records import GraphRecords

log = logging.getLogger(__name__)

#: The pack format this code writes (``manifest.json`` ``pack_format``); it reads 1 to this.
#: 2: the explainer tables.
PACK_FORMAT = 2
MANIFEST = "manifest.json"
#: The tables of a pack: (name in the archive, "node" | "rel", label or relationship type).
TABLES: tuple[tuple[str, str, str], ...] = (
    ("model", "node", "Model"),
    ("layers", "node", "Layer"),
    ("filters", "node", "Filter"),
    ("patterns", "node", "Pattern"),
    ("images", "node", "Image"),
    ("parents", "rel", "PARENT"),
    ("fires", "rel", "FIRES"),
    ("parts", "node", "Part"),
    ("templates", "node", "Template"),
    ("has_template", "rel", "HAS_TEMPLATE"),
    ("uses", "rel", "USES"),
    ("matches", "rel", "MATCHES"),
    ("explainers", "node", "Explainer"),
    ("explainer_filters", "node", "ExplainerFilter"),
    ("has_explainer", "rel", "HAS_EXPLAINER"),
    ("explains", "rel", "EXPLAINS"),
    ("has_explainer_filter", "rel", "HAS_EXPLAINER_FILTER"),
)
#: The tables written as ``extras`` after the mined model (they hang off its nodes).
_EXTRAS = (
    "parts",
    "templates",
    "explainers",
    "explainer_filters",
    "has_template",
    "uses",
    "matches",
    "has_explainer",
    "explains",
    "has_explainer_filter",
)
#: The pack format that added a table (tables not named here are in every pack).
_TABLE_SINCE = {
    "explainers": 2,
    "explainer_filters": 2,
    "has_explainer": 2,
    "explains": 2,
    "has_explainer_filter": 2,
}
#: Which rows of a relationship belong to the model: a condition on ``a`` (source), ``b``, ``r``.
_OWNER = {
    "PARENT": "a.model_id = $m",
    "FIRES": "r.model_id = $m",
    "HAS_TEMPLATE": "a.model_id = $m",
    "USES": "a.model_id = $m",
    "MATCHES": "(a.model_id = $m OR b.model_id = $m)",
    "HAS_EXPLAINER": "a.model_id = $m",
    "EXPLAINS": "a.model_id = $m",
    "HAS_EXPLAINER_FILTER": "a.model_id = $m",
}


#: The patterns of ``$ids`` the store holds (the far ends of a comparison's MATCHES edges).
KNOWN_PATTERNS = "UNWIND $ids AS id MATCH (p:Pattern {pattern_id: id}) RETURN p.pattern_id AS id"


def pack_statements() -> list[tuple[str, str]]:
    """Every statement packing and unpacking sends beyond the lifecycle's (for the linter)."""
    texts = [
        (f"read {label}", _node_statement(label) if kind == "node" else _rel_statement(label))
        for _, kind, label in TABLES
    ]
    return [*texts, ("known patterns", KNOWN_PATTERNS)]


@dataclass
class UnpackSummary:
    """What an unpack wrote."""

    model_id: str
    counts: dict[str, int]
    skipped_matches: int = 0
    notes: list[str] = field(default_factory=list)


def _node_statement(label: str) -> str:
    spec = node_spec(label)
    columns = ", ".join(f"n.{name} AS {name}" for name in spec.columns)
    if label == "Image":
        return (
            f"MATCH (n:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $m RETURN DISTINCT {columns}"
        )
    return f"MATCH (n:{label}) WHERE n.model_id = $m RETURN {columns}"


def _rel_statement(rel_type: str) -> str:
    spec = rel_spec(rel_type)
    source, target = node_spec(spec.source), node_spec(spec.target)
    columns = "".join(f", r.{p.name} AS {p.name}" for p in spec.properties)
    return (
        f"MATCH (a:{spec.source})-[r:{rel_type}]->(b:{spec.target}) WHERE {_OWNER[rel_type]} "
        f"RETURN a.{source.key} AS src, b.{target.key} AS dst{columns}"
    )


def _read_table(store: GraphStore, kind: str, name: str, model_id: str) -> pa.Table:
    """One table of ``model_id`` as Arrow, typed by the schema (one query, no per-row work)."""
    import pandas as pd

    from graphstore.records import node_table, rel_table

    statement = _node_statement(name) if kind == "node" else _rel_statement(name)
    columns = node_spec(name).columns if kind == "node" else rel_spec(name).columns
    rows = store.query(statement, {"m": model_id})
    frame = pd.DataFrame({c: [row.get(c) for row in rows] for c in columns})
    return node_table(name, frame) if kind == "node" else rel_table(name, frame)


def pack_model(
    store: GraphStore, model_id: str, out: Path, *, force: bool = False
) -> dict[str, Any]:
    """Write ``model_id`` with everything stored for it into the pack file ``out``; returns
    the manifest. The file appears whole or not at all (written beside, then renamed).

    Raises:
        UnknownModel: no such model. InputError: ``out`` exists (without ``force``) or its
        folder does not. StoreError: the model is not complete.
    """
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} exists: pass --force to overwrite it or choose another path")
    if not out.parent.is_dir():
        raise InputError(f"folder {out.parent} does not exist: create it or choose another path")
    model = store.describe_model(model_id)
    if model.get("status") != "complete":
        raise StoreError(
            f"model {model_id!r} is {model.get('status')!r}, not complete: finish or repair it "
            "(`explgraph store repair`) before packing"
        )
    tables = {name: _read_table(store, kind, label, model_id) for name, kind, label in TABLES}
    manifest = {
        "pack_format": PACK_FORMAT,
        "store_format": model_format_version(model),
        "model_id": model_id,
        "counts": {name: table.num_rows for name, table in tables.items()},
    }
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, table in tables.items():
            with archive.open(f"{name}.parquet", "w") as member:
                pq.write_table(table, member, compression="zstd")
    os.replace(partial, out)
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the pack ``path``, checked against the formats this code reads.

    Raises:
        InputError: not a pack, or written in a newer pack or store format.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise InputError(
            f"{path} is not an explgraph pack ({error}): make one with `explgraph store pack`"
        ) from None
    pack_format = int(manifest.get("pack_format", 0))
    if pack_format > PACK_FORMAT or pack_format < 1:
        raise InputError(
            f"{path} is in pack format {pack_format}; this explgraph reads pack formats 1 to "
            f"{PACK_FORMAT}: unpack it with the explgraph that packed it (or a newer one)"
        )
    store_format = int(manifest.get("store_format", 0))
    if store_format > FORMAT_VERSION:
        raise InputError(
            f"{path} holds a model in store format {store_format}; this explgraph writes "
            f"format {FORMAT_VERSION}: unpack it with a newer explgraph"
        )
    return manifest


def _frames(path: Path, pack_format: int) -> dict[str, pd.DataFrame]:
    """Every table of the pack ``path``; a table added after ``pack_format`` is empty.

    Raises:
        InputError: a table the pack's format has is missing.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    frames = {}
    with zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
        for name, kind, label in TABLES:
            if f"{name}.parquet" in members:
                frames[name] = pq.read_table(archive.open(f"{name}.parquet")).to_pandas()
            elif _TABLE_SINCE.get(name, 1) > pack_format:
                columns = node_spec(label).columns if kind == "node" else rel_spec(label).columns
                frames[name] = pd.DataFrame(columns=list(columns))
            else:
                raise InputError(
                    f"{path} lacks its table {name}.parquet: the pack is damaged; pack the "
                    "model again"
                )
    return frames


def _records(frames: dict[str, pd.DataFrame]) -> GraphRecords:
    from graphstore.records import GraphRecords

    model = {k: v for k, v in frames["model"].iloc[0].items() if v is not None}
    if "layers" in model:
        model["layers"] = [str(name) for name in model["layers"]]
    return GraphRecords(
        model=model,
        **{name: frames[name] for name in ("layers", "filters", "patterns", "parents", "images")},
        fires=frames["fires"],
    )


def _known_matches(
    store: GraphStore, matches: pd.DataFrame, model_id: str
) -> tuple[pd.DataFrame, int]:
    """The ``MATCHES`` rows whose far end (another model's pattern) the target holds."""
    prefix = f"{model_id}/"
    ends = set(matches["src"].astype(str)) | set(matches["dst"].astype(str))
    foreign = sorted(end for end in ends if not end.startswith(prefix))
    if not foreign:
        return matches, 0
    rows = store.query(KNOWN_PATTERNS, {"ids": foreign})
    known = {str(row["id"]) for row in rows} | {e for e in ends if e.startswith(prefix)}
    keep = matches["src"].astype(str).isin(known) & matches["dst"].astype(str).isin(known)
    return matches[keep], int((~keep).sum())


def unpack_model(store: GraphStore, path: Path, *, force: bool = False) -> UnpackSummary:
    """Write the model of pack ``path`` into ``store`` by the store's replace protocol.

    Raises:
        InputError: not a pack, a newer format, or the model exists (without ``force``).
    """
    manifest = read_manifest(path)
    model_id = str(manifest["model_id"])
    if not force and model_id in {row["model_id"] for row in store.list_models()}:
        raise InputError(
            f"the store already holds a model {model_id!r}: pass --force to replace it"
        )
    frames = _frames(path, int(manifest["pack_format"]))
    matches, skipped = _known_matches(store, frames["matches"], model_id)
    frames["matches"] = matches
    kinds = {name: kind for name, kind, _ in TABLES}
    labels = {name: label for name, _, label in TABLES}
    extras: list[WriteStep] = [(kinds[n], labels[n], frames[n]) for n in _EXTRAS]
    records = _records(frames)
    store.write_model(records, extras=extras)
    if "diagnosis" in frames["patterns"] and frames["patterns"]["diagnosis"].notna().any():
        store.refresh_after_write("diagnosis")  # the FLAGGED edges
    mark_store_format(store, int(manifest["store_format"]))
    summary = UnpackSummary(model_id, {n: len(frames[n]) for n, _, _ in TABLES}, skipped)
    if skipped:
        summary.notes.append(
            f"left out {skipped} MATCHES edges to patterns of models this store lacks "
            "(unpack those models first, then this one again with --force)"
        )
    return summary


__all__ = [
    "KNOWN_PATTERNS",
    "MANIFEST",
    "PACK_FORMAT",
    "TABLES",
    "UnpackSummary",
    "pack_model",
    "pack_statements",
    "read_manifest",
    "unpack_model",
]
