"""The embedded engine: LadybugDB (the maintained fork of Kùzu), in-process, one folder on disk.

Bulk writes go through ``COPY <table> FROM <Arrow table>`` (about a million edges in seconds);
row-by-row Cypher is used only to update the few nodes an upsert finds already present.
Read-only is enforced twice: every statement run without ``write`` is classified first
(:mod:`graphstore.statements` refuses COPY, EXPORT/IMPORT DATABASE, LOAD FROM, CHECKPOINT,
ATTACH, CALL of functions not known to read only, ...), then it runs on a read-only database
handle or inside ``BEGIN TRANSACTION READ ONLY``. A model replacement is one write transaction.
A read-only open that finds checkpoint recovery pending (a writer was killed) runs the recovery
with a short read-write open when no writer holds the lock.
One process may write a store at a time (LadybugDB holds a file lock); read-only processes may
open it alongside and see a snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explgraph.core.errors import (
    QuerySyntaxError,
    ReadOnlyViolation,
    StoreError,
    StoreUnavailable,
)
from explgraph.core.faults import fault_point
from graphstore.address import DATABASE_FILE, folder_state
from graphstore.lifecycle import GraphStore
from graphstore.results import ladybug_value
from graphstore.schema import (
    ADDED_PROPERTIES,
    RELATIONSHIPS,
    ladybug_ddl,
    node_spec,
    rel_spec,
)
from graphstore.statements import check_statement

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_RECOVERY_PENDING = "checkpoint recovery is pending"
_BATCH = 5000


def translate_error(error: Exception, cypher: str = "") -> StoreError:
    """Map a LadybugDB ``RuntimeError`` to the explgraph error tree, keeping its first line."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    lowered = text.lower()
    if _RECOVERY_PENDING in lowered:
        return StoreUnavailable(
            "the store is being recovered from an interrupted write by the process that holds "
            "it; run this again when that process has finished"
        )
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
    transactional = True

    def __init__(self, spec: str, *, read_only: bool = False, create: bool = True) -> None:
        super().__init__(spec, read_only=read_only)
        import ladybug

        self._ladybug = ladybug
        self._in_transaction = False
        folder = Path(spec).expanduser()
        path = folder / DATABASE_FILE
        state = folder_state(folder)
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file, not a store folder: name a folder with --store")
        if state != "store" and (read_only or not create):
            raise StoreError(
                f"no store at {folder}: write a model into it first (explgraph mine / demo) "
                "or point --store / EXPLGRAPH_STORE at an existing store"
            )
        if state == "foreign":
            raise StoreError(
                f"{folder} is not empty and holds no explgraph store: name a new or empty "
                "folder with --store"
            )
        folder.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db: ladybug.Database | None = None
        self._conn: ladybug.Connection | None = None
        try:
            self._open(read_only)
        except RuntimeError as error:
            if not (read_only and _RECOVERY_PENDING in str(error).lower()):
                raise translate_error(error) from None
            self._recover_then_open()
        if not read_only:
            self.ensure_schema()
            self.backfill_precomputed()
        elif self._lacks_added_properties():
            self._upgrade_then_open()

    def _open(self, read_only: bool) -> None:
        self._db = self._ladybug.Database(str(self.path), read_only=read_only)
        self._conn = self._ladybug.Connection(self._db)

    def _recover_then_open(self) -> None:
        """Finish a pending checkpoint recovery with a short read-write open, then reopen.

        A crashed writer (or a ``CHECKPOINT`` run read-only by older versions) leaves recovery
        pending, and LadybugDB refuses read-only opens until a read-write open has replayed it.
        If a writer holds the lock, it does the recovery itself: say so and let the user wait.
        """
        try:
            database = self._ladybug.Database(str(self.path), read_only=False)
        except RuntimeError as error:
            if "could not set lock" in str(error).lower():
                raise StoreUnavailable(
                    f"another process is writing the store {self.path.parent} and recovering "
                    "it from an interrupted write; run this again when it has finished"
                ) from None
            raise translate_error(error) from None
        database.close()
        self._reopen_read_only()

    def _lacks_added_properties(self) -> bool:
        """True for a store written by a version before :data:`ADDED_PROPERTIES`, one of the
        relationship tables (e.g. ``TOP_PATH``) or the write-time answers existed."""
        tables = {str(row.get("name")) for row in self._execute("CALL show_tables() RETURN *", {})}
        if not {spec.type for spec in RELATIONSHIPS} <= tables:
            return True
        for label, names in ADDED_PROPERTIES.items():
            rows = self._execute(f"CALL table_info('{label}') RETURN *", {})
            present = {str(row.get("name")) for row in rows}
            if not set(names) <= present:
                return True
        # a model written before the write-time answers existed (graphstore.precompute)
        return bool(self._execute("MATCH (m:Model) WHERE m.precomputed IS NULL RETURN 1", {}))

    def _upgrade_then_open(self) -> None:
        """Add the new properties and the models' write-time answers with a short read-write
        open (when no writer holds the store; a writer adds them itself), then reopen
        read-only."""
        self.close()
        try:
            upgrader = LadybugStore(str(self.path.parent), read_only=False, create=False)
        except StoreUnavailable:
            pass  # a writer holds it, and its own open adds the properties
        else:
            upgrader.close()
        self._reopen_read_only()

    def _reopen_read_only(self) -> None:
        """Open read-only after a short read-write open (recovery, upgrade) has closed."""
        try:
            self._open(read_only=True)
        except RuntimeError as error:
            raise translate_error(error) from None

    def ensure_schema(self) -> None:
        """Create every node and relationship table that is missing."""
        if self.read_only:
            return
        for statement in ladybug_ddl():
            self._execute(statement, {})

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``cypher``; without ``write`` it is classified first, then run read-only.

        Nodes, relationships and paths in the rows come back in the engine-neutral form of
        :mod:`graphstore.results`.
        """
        params = dict(params or {})
        check_statement(cypher, params, write=write)
        if write:
            self._require_write("run a write query")
            return self._execute(cypher, params, plain=True)
        with self._read_scope():
            return self._execute(cypher, params, plain=True)

    def query_frame(self, cypher: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """A read-only query's rows as a data frame, read through Arrow (no per-row objects)."""
        params = dict(params or {})
        check_statement(cypher, params, write=False)
        if self._conn is None:
            raise StoreError("the store is closed: open it again with open_store()")
        with self._read_scope():
            try:
                result = self._conn.execute(cypher, params)
                if isinstance(result, list):
                    result = result[-1]
                frame = result.get_as_arrow().to_pandas()
                result.close()
            except RuntimeError as error:
                raise translate_error(error, cypher) from None
        return frame

    @contextlib.contextmanager
    def _read_scope(self) -> Iterator[None]:
        """A read-only transaction around the block, unless the handle is read-only already or
        a write transaction is open (the block then runs inside it); rolled back if it raises."""
        if self.read_only or self._in_transaction:
            yield
            return
        self._execute("BEGIN TRANSACTION READ ONLY", {})
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self._execute("COMMIT", {})

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        self._require_write("write")
        self._execute("BEGIN TRANSACTION", {})
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            self._rollback()
            raise
        self._in_transaction = False
        self._execute("COMMIT", {})

    def close(self) -> None:
        """Close the connection and release the file lock."""
        conn, db = getattr(self, "_conn", None), getattr(self, "_db", None)
        if conn is not None:
            conn.close()
        if db is not None:
            db.close()
        self._conn = None
        self._db = None

    def reader(self) -> LadybugStore | None:
        """Another read-only handle on this read-only database, with a connection of its own
        (LadybugDB runs several connections on one database); closing it closes only that
        connection. None for a read-write handle."""
        if not self.read_only or self._db is None:
            return None
        other = LadybugStore.__new__(LadybugStore)
        GraphStore.__init__(other, self.spec, read_only=True)
        other._ladybug, other._in_transaction, other.path = self._ladybug, False, self.path
        other._db = None  # not its own: its close() leaves the database open
        other._conn = self._ladybug.Connection(self._db)
        return other

    def interrupt(self) -> bool:
        """Stop the statement running on this handle's connection (LadybugDB's interrupt; a
        no-op when none runs)."""
        conn = self._conn
        if conn is None:
            return False
        conn.interrupt()
        return True

    # bulk primitives -------------------------------------------------------------------------

    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        self._execute(f"COPY {label} FROM $frame", {"frame": table})
        fault_point("write:batch")

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._execute(f"COPY {rel_type} FROM $frame", {"frame": table})
        fault_point("write:batch")

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

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

    def _execute(
        self, cypher: str, params: dict[str, Any], *, plain: bool = False
    ) -> list[dict[str, Any]]:
        if self._conn is None:
            raise StoreError("the store is closed: open it again with open_store()")
        try:
            result = self._conn.execute(cypher, params)
            if isinstance(result, list):  # several statements: the last one's rows
                result = result[-1]
            columns = result.get_column_names()
            values = result.get_all()
            if plain:
                values = [[ladybug_value(value) for value in row] for row in values]
            rows = [dict(zip(columns, row, strict=True)) for row in values]
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
