"""The engine-neutral store API: :class:`GraphStore` and :func:`open_store`.

Writing a model that is already in the store **replaces** it: the old copy is deleted, the new
``Model`` node is written with status ``'mining'``, then every other node and edge in bulk, and
the status becomes ``'complete'`` last. A write that dies midway therefore leaves a model marked
``'mining'`` (never ``'complete'``) that the next write of the same id, or ``explgraph delete``,
removes. ``Image`` nodes are shared between models: they are upserted, and deleting a model
removes only the images that no other model's ``FIRES`` edges still use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import pandas as pd
import pyarrow as pa

from explgraph.errors import ReadOnlyViolation, StoreError, UnknownModel
from explgraph.progress import NULL_PROGRESS, Progress
from explgraph.settings import is_bolt_uri
from graphstore.records import GraphRecords, node_table, rel_table
from graphstore.schema import NODES, node_spec

STATUSES = ("mining", "complete")

# The counts list_models() and describe_model() add to each model's properties.
_COUNT_NAMES = ("n_layers", "n_filters", "n_patterns", "n_parents", "n_fires")

# Labels and relationship types that belong to one model; Image is the only shared label.
_MODEL_LABELS = tuple(spec.label for spec in NODES if spec.has_model_id)


class GraphStore(ABC):
    """A graph store holding any number of mined models. Use as a context manager."""

    #: engine name shown by ``explgraph store info``
    engine: str = ""

    def __init__(self, spec: str, *, read_only: bool) -> None:
        self.spec = spec
        self.read_only = read_only

    # engine primitives -----------------------------------------------------------------------

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables / constraints and indexes if they do not exist (idempotent)."""

    @abstractmethod
    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``cypher`` with ``params`` and return its rows as dicts keyed by column name.

        Without ``write`` the engine itself enforces read-only: a statement that would change
        the store raises :class:`~explgraph.errors.ReadOnlyViolation` and changes nothing.
        """

    @abstractmethod
    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        """Bulk-create nodes whose keys are known not to exist yet (the fast path)."""

    @abstractmethod
    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        """Bulk-create edges between existing nodes, known not to exist yet."""

    @abstractmethod
    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        """Create missing nodes; on existing ones overwrite only the properties in ``columns``."""

    @abstractmethod
    def _upsert_relationships(self, rel_type: str, table: pa.Table) -> None:
        """Create missing edges; an edge that already joins the same two nodes is replaced."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection / database handle."""

    def info(self) -> dict[str, Any]:
        """What ``explgraph store info`` prints: engine, location, access mode, model count."""
        return {
            "engine": self.engine,
            "store": self.spec,
            "read_only": self.read_only,
            "models": len(self.list_models()),
        }

    # engine-neutral operations ---------------------------------------------------------------

    def write_nodes(self, label: str, frame: pd.DataFrame) -> None:
        """Upsert ``frame`` (the key column plus any declared properties) as ``label`` nodes."""
        self._require_write("write nodes")
        given = [name for name in frame.columns if name != node_spec(label).key]
        self._upsert_nodes(label, node_table(label, frame), given)

    def write_relationships(self, rel_type: str, frame: pd.DataFrame) -> None:
        """Upsert ``frame`` (``src``, ``dst`` keys plus declared properties) as edges."""
        self._require_write("write relationships")
        self._upsert_relationships(rel_type, rel_table(rel_type, frame))

    def write_model(self, records: GraphRecords, *, progress: Progress = NULL_PROGRESS) -> None:
        """Write one mined model in bulk, replacing any earlier copy with the same id.

        Raises:
            StoreError: the records do not validate, or the engine refused the write.
        """
        self._require_write("write a model")
        records.validate()
        model_id = records.model_id
        self.ensure_schema()
        hierarchy = records.hierarchy()
        steps: list[tuple[str, str, pd.DataFrame]] = [
            ("node", "Layer", records.layers),
            ("node", "Filter", records.filters),
            ("node", "Pattern", records.patterns),
            ("rel", "HAS_LAYER", hierarchy["HAS_LAYER"]),
            ("rel", "HAS_FILTER", hierarchy["HAS_FILTER"]),
            ("rel", "HAS_PATTERN", hierarchy["HAS_PATTERN"]),
            ("rel", "PARENT", records.parents),
            ("images", "Image", records.images),
            ("rel", "FIRES", records.fires.assign(model_id=model_id)),
        ]
        total = sum(len(frame) for _, _, frame in steps) + 2
        with progress.task(f"writing {model_id}", total) as bar:
            if self._model_exists(model_id):
                self.delete_model(model_id)
            self._insert_nodes("Model", node_table("Model", records.model_frame("mining")))
            bar.advance()
            for kind, name, frame in steps:
                if len(frame) == 0:
                    continue
                if kind == "node":
                    self._insert_nodes(name, node_table(name, frame))
                elif kind == "images":
                    given = [c for c in frame.columns if c != node_spec(name).key]
                    self._upsert_nodes(name, node_table(name, frame), given)
                else:
                    self._insert_relationships(name, rel_table(name, frame))
                bar.advance(len(frame))
            self.set_model_status(model_id, "complete")
            bar.advance()

    def set_model_status(self, model_id: str, status: str) -> None:
        """Mark ``model_id`` as ``'mining'`` or ``'complete'``."""
        if status not in STATUSES:
            raise StoreError(f"unknown model status {status!r}: use one of {', '.join(STATUSES)}")
        rows = self.query(
            "MATCH (m:Model {model_id: $id}) SET m.status = $status RETURN m.model_id AS id",
            {"id": model_id, "status": status},
            write=True,
        )
        if not rows:
            raise self._unknown(model_id)

    def list_models(self) -> list[dict[str, Any]]:
        """Every model with its status and node / edge counts, sorted by id."""
        models = self.query(
            "MATCH (m:Model) RETURN m.model_id AS model_id, m.architecture AS architecture, "
            "m.status AS status, m.created AS created, m.n_images AS n_images "
            "ORDER BY model_id"
        )
        if not models:
            return []
        counts = self._counts()
        for row in models:
            row.update(counts.get(row["model_id"], {}))
            for name in _COUNT_NAMES:
                row.setdefault(name, 0)
        return models

    def describe_model(self, model_id: str) -> dict[str, Any]:
        """All properties of ``model_id``, its per-layer summary and counts.

        Raises:
            UnknownModel: no such model; the message lists the known ids.
        """
        rows = self.query(
            "MATCH (m:Model {model_id: $id}) RETURN "
            + ", ".join(f"m.{name} AS {name}" for name in _model_columns()),
            {"id": model_id},
        )
        if not rows:
            raise self._unknown(model_id)
        description = dict(rows[0])
        description["layer_summary"] = self.query(
            "MATCH (l:Layer) WHERE l.model_id = $id RETURN l.name AS name, l.depth AS depth, "
            "l.height AS height, l.width AS width, l.stride AS stride, l.channels AS channels "
            "ORDER BY depth",
            {"id": model_id},
        )
        counts = self._counts(model_id).get(model_id, {})
        description.update({name: counts.get(name, 0) for name in _COUNT_NAMES})
        return description

    def delete_model(self, model_id: str) -> None:
        """Delete ``model_id`` with everything it owns; keep images other models still use.

        Raises:
            UnknownModel: no such model.
        """
        self._require_write("delete a model")
        if not self._model_exists(model_id):
            raise self._unknown(model_id)
        used = self.query(
            "MATCH (i:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $id "
            "RETURN DISTINCT i.image_id AS image_id",
            {"id": model_id},
        )
        for label in _MODEL_LABELS:
            self._delete_where_model(label, model_id)
        image_ids = [row["image_id"] for row in used]
        if image_ids:
            self.query(
                # OPTIONAL MATCH + count rather than an EXISTS subquery: both engines accept it
                "UNWIND $ids AS id MATCH (i:Image {image_id: id}) "
                "OPTIONAL MATCH (i)-[f:FIRES]->(:Pattern) WITH i, count(f) AS uses "
                "WHERE uses = 0 DELETE i",
                {"ids": image_ids},
                write=True,
            )

    # helpers ---------------------------------------------------------------------------------

    def _delete_where_model(self, label: str, model_id: str) -> None:
        self.query(
            f"MATCH (n:{label}) WHERE n.model_id = $id DETACH DELETE n",
            {"id": model_id},
            write=True,
        )

    def _model_exists(self, model_id: str) -> bool:
        return bool(
            self.query("MATCH (m:Model {model_id: $id}) RETURN m.model_id AS id", {"id": model_id})
        )

    def _unknown(self, model_id: str) -> UnknownModel:
        known = [row["id"] for row in self.query("MATCH (m:Model) RETURN m.model_id AS id")]
        listing = ", ".join(sorted(known)) if known else "none yet (mine one with `explgraph mine`)"
        return UnknownModel(f"no model {model_id!r} in this store; known models: {listing}")

    def _counts(self, model_id: str | None = None) -> dict[str, dict[str, int]]:
        """Per model: numbers of layers, filters, patterns, PARENT and FIRES edges."""
        where = "WHERE n.model_id = $id " if model_id is not None else ""
        params = {"id": model_id} if model_id is not None else {}
        counts: dict[str, dict[str, int]] = {}
        for name, label in (
            ("n_layers", "Layer"),
            ("n_filters", "Filter"),
            ("n_patterns", "Pattern"),
        ):
            for row in self.query(
                f"MATCH (n:{label}) {where}RETURN n.model_id AS model_id, count(n) AS c", params
            ):
                counts.setdefault(row["model_id"], {})[name] = int(row["c"])
        rel_where = "WHERE p.model_id = $id " if model_id is not None else ""
        for row in self.query(
            f"MATCH (:Pattern)-[:PARENT]->(p:Pattern) {rel_where}"
            "RETURN p.model_id AS model_id, count(*) AS c",
            params,
        ):
            counts.setdefault(row["model_id"], {})["n_parents"] = int(row["c"])
        fires_where = "WHERE f.model_id = $id " if model_id is not None else ""
        for row in self.query(
            f"MATCH (:Image)-[f:FIRES]->(:Pattern) {fires_where}"
            "RETURN f.model_id AS model_id, count(*) AS c",
            params,
        ):
            counts.setdefault(row["model_id"], {})["n_fires"] = int(row["c"])
        return counts

    def _require_write(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyViolation(
                f"cannot {what}: the store {self.spec} is open read-only; open it with "
                "read_only=False (CLI: pass --write)"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _model_columns() -> tuple[str, ...]:
    return next(spec for spec in NODES if spec.label == "Model").columns


def open_store(spec: str, *, read_only: bool = False) -> GraphStore:
    """Open the store named by ``spec``: a Bolt URI, or a folder for the embedded engine.

    Bolt credentials and database come from ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` /
    ``NEO4J_DATABASE`` (see :func:`explgraph.settings.bolt_settings`).

    Raises:
        StoreUnavailable: the server cannot be reached, or another process is writing the
            embedded store.
        AuthenticationFailed: the server refused the credentials.
    """
    if is_bolt_uri(spec):
        from graphstore.bolt_engine import BoltStore

        return BoltStore(spec, read_only=read_only)
    from graphstore.ladybug_engine import LadybugStore

    return LadybugStore(spec, read_only=read_only)


__all__ = ["STATUSES", "GraphStore", "open_store"]
