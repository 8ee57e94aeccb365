"""The embedded engine: LadybugDB (the maintained fork of Kùzu), in-process, one folder on disk.

Bulk writes go through ``COPY <table> FROM <Arrow table>`` (about a million edges in seconds);
row-by-row Cypher is used only to update the few nodes an upsert finds already present.
Read-only is enforced by the engine: a store opened read-only uses a read-only database handle,
and a read query on a read-write handle runs inside ``BEGIN TRANSACTION READ ONLY``.
One process may write a store at a time (LadybugDB holds a file lock); read-only processes may
open it alongside and see a snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from explgraph.errors import (
    QuerySyntaxError,
    ReadOnlyViolation,
    StoreError,
    StoreUnavailable,
)
from graphstore.api import GraphStore
from graphstore.schema import ladybug_ddl, node_spec, rel_spec

DATABASE_FILE = "graph.lbug"
_BATCH = 5000


def translate_error(error: Exception, cypher: str = "") -> StoreError:
    """Map a LadybugDB ``RuntimeError`` to the explgraph error tree, keeping its first line."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    lowered = text.lower()
    if "read-only" in lowered or "read only" in lowered:
        return ReadOnlyViolation(
            f"the query tries to change the store ({first}): pass --write to allow it"
        )
    if text.startswith(("Parser exception", "Binder exception")):
        return QuerySyntaxError(f"{first}; check the Cypher (LadybugDB dialect) and try again")
    if "could not set lock" in lowered:
        return StoreUnavailable(
            f"another process is writing this store ({first}); wait for it to finish or "
            "query the store read-only"
        )
    return StoreError(f"LadybugDB refused the operation: {first}")


class LadybugStore(GraphStore):
    """A store in a folder on disk, served in-process by LadybugDB."""

    engine = "ladybug"

    def __init__(self, spec: str, *, read_only: bool = False) -> None:
        super().__init__(spec, read_only=read_only)
        import ladybug

        folder = Path(spec).expanduser()
        path = folder / DATABASE_FILE
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file, not a store folder: name a folder with --store")
        if read_only and not path.exists():
            raise StoreError(
                f"no store at {folder}: write a model into it first (explgraph mine / demo) "
                "or point --store / EXPLGRAPH_STORE at an existing store"
            )
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self._db: ladybug.Database | None = ladybug.Database(str(path), read_only=read_only)
            self._conn: ladybug.Connection | None = ladybug.Connection(self._db)
        except RuntimeError as error:
            raise translate_error(error) from None
        self.path = path
        if not read_only:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        """Create every node and relationship table that is missing."""
        if self.read_only:
            return
        for statement in ladybug_ddl():
            self._execute(statement, {})

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``cypher``; without ``write`` inside a read-only transaction."""
        params = dict(params or {})
        if write:
            self._require_write("run a write query")
            return self._execute(cypher, params)
        if self.read_only:
            return self._execute(cypher, params)
        self._execute("BEGIN TRANSACTION READ ONLY", {})
        try:
            rows = self._execute(cypher, params)
        except BaseException:
            self._rollback()
            raise
        self._execute("COMMIT", {})
        return rows

    def close(self) -> None:
        """Close the connection and release the file lock."""
        conn, db = getattr(self, "_conn", None), getattr(self, "_db", None)
        if conn is not None:
            conn.close()
        if db is not None:
            db.close()
        self._conn = None
        self._db = None

    # bulk primitives -------------------------------------------------------------------------

    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        self._execute(f"COPY {label} FROM $frame", {"frame": table})

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._execute(f"COPY {rel_type} FROM $frame", {"frame": table})

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        spec = node_spec(label)
        keys = table.column(spec.key).to_pylist()
        existing: set[str] = set()
        for start in range(0, len(keys), _BATCH):
            rows = self._execute(
                f"UNWIND $ids AS id MATCH (n:{label} {{{spec.key}: id}}) RETURN n.{spec.key} AS k",
                {"ids": keys[start : start + _BATCH]},
            )
            existing.update(row["k"] for row in rows)
        # COPY refuses (and this LadybugDB build can crash on) keys that already exist, so only
        # new keys go through COPY and the present ones are updated in place.
        is_new = pa.array([key not in existing for key in keys], pa.bool_())
        fresh = table.filter(is_new)
        if fresh.num_rows:
            self._insert_nodes(label, fresh)
        types = {p.name: p.type for p in spec.properties}
        if existing and columns:
            stale = table.filter(pc.invert(is_new)).select([spec.key, *columns])
            # explicit casts: a column of nulls would otherwise bind as STRING
            assignments = ", ".join(
                f"n.{name} = CAST(r.{name} AS {types[name].value})" for name in columns
            )
            for batch in _batches(stale):
                self._execute(
                    f"UNWIND $rows AS r MATCH (n:{label} {{{spec.key}: r.{spec.key}}}) "
                    f"SET {assignments}",
                    {"rows": batch},
                )

    def _upsert_relationships(self, rel_type: str, table: pa.Table) -> None:
        spec = rel_spec(rel_type)
        src_key, dst_key = node_spec(spec.source).key, node_spec(spec.target).key
        pairs = table.select(["src", "dst"]).to_pylist()
        for start in range(0, len(pairs), _BATCH):
            # two MATCH clauses: LadybugDB plans the comma form as a cross product
            self._execute(
                f"UNWIND $rows AS r MATCH (a:{spec.source} {{{src_key}: r.src}}) "
                f"MATCH (a)-[e:{rel_type}]->(b:{spec.target} {{{dst_key}: r.dst}}) DELETE e",
                {"rows": pairs[start : start + _BATCH]},
            )
        self._insert_relationships(rel_type, table)

    # plumbing --------------------------------------------------------------------------------

    def _execute(self, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._conn is None:
            raise StoreError("the store is closed: open it again with open_store()")
        try:
            result = self._conn.execute(cypher, params)
            if isinstance(result, list):  # several statements: the last one's rows
                result = result[-1]
            columns = result.get_column_names()
            rows = [dict(zip(columns, row, strict=True)) for row in result.get_all()]
            result.close()
        except RuntimeError as error:
            raise translate_error(error, cypher) from None
        return rows

    def _rollback(self) -> None:
        # the failed statement may already have ended the transaction
        with contextlib.suppress(StoreError):
            self._execute("ROLLBACK", {})


def _batches(table: pa.Table) -> list[list[dict[str, Any]]]:
    rows = table.to_pylist()
    return [rows[start : start + _BATCH] for start in range(0, len(rows), _BATCH)]


__all__ = ["DATABASE_FILE", "LadybugStore", "translate_error"]
