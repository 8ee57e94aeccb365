"""The embedded engine: LadybugDB (the maintained fork of Kùzu), in-process, one folder on disk.

Bulk writes go through ``COPY <table> FROM <Arrow table>`` (about a million edges in seconds);
row-by-row Cypher is used only to update the few nodes an upsert finds already present.
Read-only is enforced twice: every statement run without ``write`` is classified first
(:mod:`graphstore.statements` refuses COPY, EXPORT/IMPORT DATABASE, LOAD FROM, CHECKPOINT,
ATTACH, CALL of functions not known to read only, ...), then it runs on a read-only database
handle or inside ``BEGIN TRANSACTION READ ONLY``. A model replacement is one write transaction.

Every transaction that bulk-loads (a replace, an upsert, a backfill) is protected by a safety
copy of the store (:mod:`graphstore.safety_copy`), because the engine's own crash recovery can
lose a COPY that shares a transaction with logged writes; the next open undoes such a write
when it was interrupted (:mod:`graphstore.ladybug_open`). One process may write a store at a
time (:mod:`graphstore.writer_lock`, then LadybugDB's own file lock); read-only processes may
open it alongside and see a snapshot. Writes first check the free disk space, because the
engine ends the process (``std::terminate``) when its write-ahead log cannot be written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explgraph.core.diskspace import is_no_space, no_space_message
from explgraph.core.errors import StoreError, StoreUnavailable
from explgraph.core.faults import fault_point
from graphstore import safety_copy
from graphstore.address import DATABASE_FILE
from graphstore.engine import BulkWrite
from graphstore.ladybug_open import (
    check_folder,
    lock_for_writing,
    open_database,
    translate_error,
    undo_interrupted_write,
)
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
from graphstore.writer_lock import WriterLock

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

_BATCH = 5000
_COMMITTED_NOT_CHECKPOINTED = "post-commit checkpoint failed"


class LadybugStore(GraphStore):
    """A store in a folder on disk, served in-process by LadybugDB."""

    engine = "ladybug"
    transactional = True

    def __init__(self, spec: str, *, read_only: bool = False, create: bool = True) -> None:
        super().__init__(spec, read_only=read_only)
        import ladybug

        self._ladybug = ladybug
        self._in_transaction = False
        self._bulk: BulkWrite | None = None
        self.folder = Path(spec).expanduser()
        check_folder(self.folder, read_only=read_only, create=create)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / DATABASE_FILE
        self._db: ladybug.Database | None = None
        self._conn: ladybug.Connection | None = None
        self._writer = WriterLock(self.folder)
        try:
            self._open_folder(read_only)
            if not read_only:
                self.ensure_schema()
                self.backfill_precomputed()
            elif self._lacks_added_properties():
                self._upgrade_then_open()
        except BaseException:
            self.close()
            raise

    def _open_folder(self, read_only: bool) -> None:
        """Lock (writers), undo an interrupted write, check the space, open the engine."""
        if not read_only:
            lock_for_writing(self.folder, self._writer)
        undone = undo_interrupted_write(self.folder, self._writer)
        if undone:
            self.notices.append(undone)
        if not read_only:
            self._check_room("writing to the store")
        self._db, found = open_database(
            self._ladybug, self.folder, read_only=read_only, lock=self._writer
        )
        self.notices.extend(found)
        self._conn = self._ladybug.Connection(self._db)

    def _open(self, read_only: bool) -> None:
        self._db = self._ladybug.Database(str(self.path), read_only=read_only)
        self._conn = self._ladybug.Connection(self._db)

    def _check_room(self, what: str) -> None:
        """Refuse before the engine would abort: its WAL must fit (see the module docstring)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        safety_copy.check_room(self.folder, safety_copy.write_headroom(size), what)

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
            self.notices.extend(upgrader.notices)
            upgrader.close()
        self._open_folder(read_only=True)

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
            if not self._in_transaction:
                self._check_room("writing to the store")
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
    def _transaction(self, *, bulk: BulkWrite | None = None) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        With ``bulk`` the store is checkpointed and copied first, and the copy is dropped only
        after the commit, ``bulk.verify`` and a clean checkpoint (see :meth:`_commit_bulk`).
        """
        self._require_write("write")
        if self._in_transaction:
            raise StoreError("internal error: a write transaction inside another one")
        if bulk is not None:
            self._take_safety_copy(bulk)
        else:
            self._check_room("writing to the store")
        self._execute("BEGIN TRANSACTION", {})
        self._in_transaction, self._bulk = True, bulk
        try:
            yield
        except BaseException:
            self._in_transaction, self._bulk = False, None
            self._rollback()
            if bulk is not None:
                safety_copy.drop(self.folder)
            raise
        self._in_transaction = False
        try:
            if bulk is None:
                self._execute("COMMIT", {})
            else:
                self._commit_bulk(bulk)  # its errors must know it was a bulk write
        finally:
            self._bulk = None

    def _take_safety_copy(self, bulk: BulkWrite) -> None:
        """Checkpoint (the WAL folded into ``graph.lbug``), then copy the store and mark it."""
        self._execute("CHECKPOINT", {})
        left = [name for name in safety_copy.ENGINE_WRITE_FILES if (self.folder / name).exists()]
        if left:
            raise StoreError(
                f"the store {self.folder} did not checkpoint before a bulk write "
                f"({', '.join(left)} left): close every other process that writes it, try again"
            )
        safety_copy.take(self.folder, bulk.operation, bulk.model_id)
        fault_point("write:safety-copy")

    def _commit_bulk(self, bulk: BulkWrite) -> None:
        """COMMIT, verify, CHECKPOINT, then drop the safety copy (the commit point of the write).

        Any failure on the way (the engine's post-commit checkpoint out of space, a failed
        verification, Ctrl-C) restores the safety copy at once: the store is as it was before.
        """
        try:
            self._execute("COMMIT", {})
            if bulk.verify is not None:
                bulk.verify()
            self._execute("CHECKPOINT", {})
            fault_point("write:checkpointed")
        except BaseException as error:
            self._undo_from_safety_copy()
            if not isinstance(error, Exception):
                raise
            of = f" of model {bulk.model_id!r}" if bulk.model_id else ""
            raise StoreError(
                f"{error} (the {bulk.operation}{of} was undone: the store is as it was before it)"
            ) from None
        safety_copy.drop(self.folder)

    def _undo_from_safety_copy(self) -> None:
        """Close the engine, put the safety copy back, reopen (the writer lock stays held)."""
        self._close_engine()
        line = safety_copy.restore(self.folder)  # logged for store info; the error says it too
        if line:
            self.notices.append(line)
        self._open(read_only=False)

    def live_writers(self) -> list[str]:
        """The process writing this folder, when another one is (from its writer lock)."""
        holder = None if self._writer.held else self._writer.live_holder()
        return [f"the store: {holder}"] if holder else []

    def recoveries(self) -> list[str]:
        """The interrupted writes undone in this folder (:mod:`graphstore.safety_copy` logs)."""
        return safety_copy.recoveries(self.folder)

    def forget_recoveries(self) -> None:
        """Clear the log of undone writes (``explgraph store repair`` reported them)."""
        self._require_write("clear the log of undone writes")
        safety_copy.clear_recoveries(self.folder)

    def close(self) -> None:
        """Close the connection, the database and release the writer lock."""
        self._close_engine()
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.release()

    def _close_engine(self) -> None:
        conn, db = getattr(self, "_conn", None), getattr(self, "_db", None)
        self._conn = None
        self._db = None
        if conn is not None:
            conn.close()
        if db is not None:
            db.close()

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
        self._bulk_load(label, table)

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._bulk_load(rel_type, table)

    def _bulk_load(self, name: str, table: pa.Table) -> None:
        """``COPY name FROM table``, always inside a transaction opened for bulk loads."""
        if not self._in_transaction:
            with self._transaction(bulk=BulkWrite(f"bulk load of {name}")):
                self._bulk_load(name, table)
            return
        if self._bulk is None:
            raise StoreError(f"internal error: a bulk load of {name} in a plain transaction")
        self._execute(f"COPY {name} FROM $frame", {"frame": table})
        fault_point("write:batch")

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        if not self._in_transaction:  # COPY of the new keys + SET of the others: one write
            with self._transaction(bulk=BulkWrite(f"upsert of {label} nodes")):
                self._upsert_nodes(label, table, columns)
            return
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
        if not self._in_transaction:  # DELETE of the old edges + COPY: one write
            with self._transaction(bulk=BulkWrite(f"upsert of {rel_type} edges")):
                self._upsert_relationships(rel_type, table)
            return
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
            raise self._engine_error(error, cypher) from None
        return rows

    def _engine_error(self, error: RuntimeError, cypher: str) -> StoreError:
        """:func:`translate_error`, plus the two failures that need the folder to be told."""
        committed = _COMMITTED_NOT_CHECKPOINTED in str(error).lower()
        after = (
            "; the write itself is committed and is checkpointed when the store is next opened"
            if committed and self._bulk is None
            else ""
        )
        if is_no_space(error):
            return StoreError(no_space_message(self.folder) + after)
        if committed:
            first = str(error).strip().splitlines()[0]
            return StoreError(f"LadybugDB could not checkpoint the store ({first[:160]}){after}")
        return translate_error(error, cypher)

    def _rollback(self) -> None:
        # the failed statement may already have ended the transaction
        with contextlib.suppress(StoreError):
            self._execute("ROLLBACK", {})


def _batches(table: pa.Table) -> list[list[dict[str, Any]]]:
    rows = table.to_pylist()
    return [rows[start : start + _BATCH] for start in range(0, len(rows), _BATCH)]


__all__ = ["DATABASE_FILE", "LadybugStore", "translate_error"]
