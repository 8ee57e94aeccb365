"""The server engine: Neo4j (or any Bolt server, e.g. ArcadeDB) through the official driver.

All work runs in managed transactions (``execute_read`` / ``execute_write``), which the driver
retries with backoff on transient errors (deadlocks, leader changes). Writes go in
``UNWIND $rows`` batches of a few thousand rows, constraints first. Model replacement uses the
staging protocol of :mod:`graphstore.lifecycle` (transactions here must stay small).

Read-only is enforced before, while and after a statement runs: the project's read-only policy
(:mod:`graphstore.statements`, an allow-list of read clauses) refuses everything else; where the
server classifies statements (Neo4j: ``EXPLAIN``'s query type), a type other than read is
refused too; the transaction uses READ access (Neo4j refuses writes there), and because ArcadeDB
ignores the access mode, the summary's ``contains_updates`` is checked and the transaction
rolled back, and the server's schema is compared before and after (:mod:`graphstore.readonly`:
ArcadeDB's schema changes outlive a rollback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from explgraph.core.errors import (
    AuthenticationFailed,
    QuerySyntaxError,
    ReadOnlyViolation,
    StoreError,
    StoreUnavailable,
    caused_by_interrupt,
)
from explgraph.core.faults import fault_point
from graphstore import bolt_lease
from graphstore.address import parse_store_address
from graphstore.lifecycle import GraphStore
from graphstore.readonly import SchemaWatch, watched_read
from graphstore.results import bolt_value
from graphstore.schema import (
    cypher_constraints,
    cypher_node_rows,
    cypher_relationship_rows,
    node_spec,
)
from graphstore.settings import BoltSettings
from graphstore.statements import INT32_MAX, INT64_MAX, check_statement

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 5000
DELETE_BATCH = 10_000
T = TypeVar("T")


class _WriteInReadMode(Exception):
    """Raised inside a read transaction that changed something, so the driver rolls it back."""


def translate_error(error: Exception, settings: BoltSettings) -> StoreError:
    """Map a driver exception to the explgraph error tree with a message that names the fix."""
    from neo4j import exceptions as neo

    if isinstance(error, neo.AuthError):
        return AuthenticationFailed(
            f"{settings.uri} refused user {settings.user!r}: set NEO4J_USERNAME and "
            "NEO4J_PASSWORD to valid credentials"
        )
    if isinstance(error, neo.ServiceUnavailable | neo.SessionExpired | OSError):
        return StoreUnavailable(
            f"cannot reach {settings.uri}: start it with `docker compose up -d` or set NEO4J_URI "
            "to a running server"
        )
    code = getattr(error, "code", None) or ""
    message = (getattr(error, "message", None) or str(error)).splitlines()[0]
    if isinstance(error, neo.CypherSyntaxError) or code.startswith(
        (
            "Neo.ClientError.Statement.Syntax",
            "Neo.ClientError.Statement.Semantic",
            "Neo.ClientError.Statement.Type",
            "Neo.ClientError.Statement.ParameterMissing",
        )
    ):
        return QuerySyntaxError(f"{message}; check the Cypher and try again")
    if code in ("Neo.ClientError.Statement.AccessMode", "Neo.ClientError.Security.Forbidden"):
        return ReadOnlyViolation(f"the query tries to change the store ({message}): pass --write")
    if code == "Neo.ClientError.Database.DatabaseNotFound":
        return StoreError(
            f"{settings.uri} has no database {settings.database!r}: set NEO4J_DATABASE to an "
            "existing database"
        )
    if isinstance(error, neo.DriverError | neo.Neo4jError):
        return StoreError(f"the Bolt server refused the operation: {message}")
    raise error


def _consume(statement: str, params: dict[str, Any] | None = None) -> Callable[[Any], None]:
    """Transaction work that runs ``statement`` and discards its rows."""

    def work(tx: Any) -> None:
        tx.run(statement, params or {}).consume()

    return work


class BoltStore(GraphStore):
    """A store on a Bolt server (Neo4j 5, Aura, or the ArcadeDB peer used in tests)."""

    engine = "bolt"
    #: how long a writer's lease on a model lasts without renewal (:mod:`graphstore.bolt_lease`)
    lease_seconds = bolt_lease.LEASE_SECONDS

    def __init__(
        self, spec: str, *, read_only: bool = False, settings: BoltSettings | None = None
    ) -> None:
        super().__init__(spec, read_only=read_only)
        import neo4j

        parse_store_address(spec)  # one line for a bad scheme or credentials in the URI
        self._neo4j = neo4j
        self.settings = settings or BoltSettings.for_uri(spec)
        self._server_types: bool | None = None  # does the server classify via EXPLAIN?
        self._open_transaction: Any = None  # set while a replacement is switched in
        self._known_read: set[str] = set()
        self._lease: bolt_lease.WriteLease | None = None
        self._schema = SchemaWatch(self._read)
        self._driver = self._connect()
        # Fail here, not on the first query: a wrong address or password is reported at open,
        # at once rather than after the managed transactions' retries.
        try:
            self._driver.verify_connectivity()
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as error:
            self._driver.close()
            raise translate_error(error, self.settings) from None
        self._read(_consume("RETURN 1 AS ok"))
        # Only Neo4j's EXPLAIN classifies statements (ArcadeDB answers 'w' for every EXPLAIN)
        try:
            agent = self._driver.get_server_info().agent or ""
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError):
            agent = ""
        self._server_types = agent.startswith("Neo4j/") and "compatible" not in agent
        if not read_only:
            self.ensure_schema()
            self.backfill_precomputed()

    def _connect(self) -> Any:
        try:
            return self._neo4j.GraphDatabase.driver(
                self.settings.uri,
                auth=(self.settings.user, self.settings.password),
                connection_timeout=10.0,
                max_transaction_retry_time=30.0,
            )
        except (ValueError, self._neo4j.exceptions.ConfigurationError):
            raise StoreError(f"bad Bolt URI {self.spec!r}: use bolt://host:7687") from None

    def ensure_schema(self) -> None:
        """Create the unique-key constraints, ``model_id`` indexes and the lease's constraint."""
        if self.read_only:
            return
        for statement in (*cypher_constraints(), bolt_lease.CONSTRAINT):
            self._write(_consume(statement))

    # one writer per model ------------------------------------------------------------------

    @contextlib.contextmanager
    def _model_lock(self, model_id: str) -> Iterator[None]:
        """Hold the write lease of ``model_id`` for the block (see :mod:`graphstore.bolt_lease`)."""
        if self._lease is not None and self._lease.model_id == model_id:
            yield  # already held by this store (a delete inside a write)
            return
        lease = bolt_lease.WriteLease(self._run_alone, model_id, seconds=self.lease_seconds)
        lease.acquire()
        self._lease = lease
        try:
            yield
        finally:
            self._lease = None
            lease.release()

    def _while_writer(self) -> tuple[str, dict[str, Any]]:
        if self._lease is None:
            return "", {}
        return bolt_lease.WHILE_HELD, self._lease.params

    def live_writers(self) -> list[str]:
        """The models other processes hold a live write lease of, with holder and expiry."""

        def work(tx: Any) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(bolt_lease.LIVE)]

        mine = self._lease.model_id if self._lease is not None else None
        rows = bolt_lease.alive(self._read(work))
        return [f"{r['model_id']}: {bolt_lease.describe(r)}" for r in rows if r["model_id"] != mine]

    def _run_alone(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One write statement in its own session and transaction, never the open switch
        transaction (the lease is renewed from another thread)."""

        def work(tx: Any) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(statement, params)]

        try:
            with self._session(self._neo4j.WRITE_ACCESS) as session:
                return session.execute_write(work)
        except BaseException as error:
            self._raise_translated(error)
            raise

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``cypher`` in a managed transaction; without ``write`` nothing may change.

        Nodes, relationships and paths come back in the form of :mod:`graphstore.results`.
        """
        parameters = dict(params or {})
        # ArcadeDB takes SKIP / LIMIT up to 2**31 - 1 (and calls a larger one negative)
        largest = INT64_MAX if self._server_types else INT32_MAX
        check_statement(cypher, parameters, write=write, largest_count=largest)

        def work(tx: Any) -> list[dict[str, Any]]:
            result = tx.run(cypher, parameters)
            keys = result.keys()
            rows = [
                dict(zip(keys, (bolt_value(v) for v in record.values()), strict=True))
                for record in result
            ]
            summary = result.consume()
            if not write and summary.counters.contains_updates:
                raise _WriteInReadMode
            return rows

        if write:
            self._require_write("run a write query")
            if self._lease is not None:
                self._lease.check()
            return self._write(work)
        self._refuse_by_server_type(cypher, parameters)

        def read() -> tuple[list[dict[str, Any]], bool]:
            try:
                return self._read(work), False
            except _WriteInReadMode:  # rolled back; the schema check says what stayed
                return [], True

        return watched_read(self._schema, cypher, read)

    def _refuse_by_server_type(self, cypher: str, parameters: dict[str, Any]) -> None:
        """Ask the server (``EXPLAIN``) what the statement does; refuse anything but a read.

        Only Neo4j servers (by their Bolt agent string) are asked; ArcadeDB, whose agent says
        "Neo4j/5.26.0 compatible (ArcadeDB …)", answers ``'w'`` for every ``EXPLAIN``. The
        project's classifier has already run for every server.
        """
        if not self._server_types or cypher in self._known_read:
            return

        def explain(tx: Any) -> str | None:
            return tx.run("EXPLAIN " + cypher, parameters).consume().query_type

        try:
            query_type = self._read(explain)
        except StoreError:
            return  # the real run reports syntax errors with the statement's own message
        if query_type is not None and query_type != "r":
            kinds = {"w": "writes", "rw": "reads and writes", "s": "changes the schema"}
            raise ReadOnlyViolation(
                f"the server says the statement {kinds.get(query_type, query_type)}; read-only "
                "queries cannot (pass --write if you mean it)"
            )
        self._known_read.add(cypher)

    def close(self) -> None:
        """Close the driver and its connection pool."""
        with contextlib.suppress(Exception):  # a connection broken by Ctrl-C cannot say goodbye
            self._driver.close()

    def _drop_connections(self) -> None:
        """After Ctrl-C inside a driver call: its connection is mid-message and would garble
        the next one, so drop the whole pool and start a fresh driver (for the clean-up)."""
        with contextlib.suppress(Exception):
            self._driver.close()
        self._open_transaction = None
        self._driver = self._connect()

    # bulk primitives -------------------------------------------------------------------------

    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        self._write_batches(cypher_node_rows(label), table)

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        key = node_spec(label).key
        statement = f"UNWIND $rows AS r MERGE (n:{label} {{{key}: r.{key}}})"
        if columns:
            statement += " SET " + ", ".join(f"n.{name} = r.{name}" for name in columns)
        self._write_batches(statement, table.select([key, *columns]))

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._write_batches(cypher_relationship_rows(rel_type, "CREATE"), table)

    def _upsert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._write_batches(cypher_relationship_rows(rel_type, "MERGE"), table)

    def _delete_where_model(self, label: str, model_id: str) -> None:
        self._delete_in_slices(label, "n.model_id = $id", {"id": model_id})

    def _delete_orphans(self, label: str, owners: list[str]) -> None:
        self._delete_in_slices(label, "NOT n.model_id IN $ids", {"ids": owners})

    def _delete_in_slices(self, label: str, where: str, params: dict[str, Any]) -> None:
        # In slices, so deleting a VGG-sized model never builds one huge transaction.
        statement = (
            f"MATCH (n:{label}) WHERE {where} WITH n LIMIT {DELETE_BATCH} "
            "DETACH DELETE n RETURN count(*) AS deleted"
        )
        while True:
            rows = self.query(statement, params, write=True)
            if not rows or int(rows[0]["deleted"]) == 0:
                return

    # plumbing --------------------------------------------------------------------------------

    def _write_batches(self, statement: str, table: pa.Table) -> None:
        for start in range(0, table.num_rows, BATCH_ROWS):
            if self._lease is not None:
                self._lease.check()
            rows = table.slice(start, BATCH_ROWS).to_pylist()
            self._write(_consume(statement, {"rows": rows}))
            fault_point("write:batch")

    def _session(self, access_mode: str) -> Any:
        return self._driver.session(
            database=self.settings.database, default_access_mode=access_mode
        )

    def _read(self, work: Callable[[Any], T]) -> T:
        return self._run(self._neo4j.READ_ACCESS, work)

    def _write(self, work: Callable[[Any], T]) -> T:
        return self._run(self._neo4j.WRITE_ACCESS, work)

    @contextlib.contextmanager
    def _switch_transaction(self) -> Iterator[None]:
        """The switch of a replacement as one explicit transaction: every write inside the block
        joins it, and a crash or error before the commit leaves the old copy untouched (the
        committed 'switching' marker lets the next write or ``store repair`` redo it). It grows
        with the model: a VGG-16-sized switch needs a server with transaction memory to match."""
        if self._open_transaction is not None:
            yield
            return
        try:
            session = self._session(self._neo4j.WRITE_ACCESS)
            transaction = session.begin_transaction()
        except (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError) as error:
            raise translate_error(error, self.settings) from None
        self._open_transaction = transaction
        try:
            yield
            transaction.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                transaction.rollback()
            raise
        finally:
            self._open_transaction = None
            with contextlib.suppress(Exception):
                transaction.close()
            with contextlib.suppress(Exception):  # its connection may be broken (Ctrl-C)
                session.close()

    def _run(self, access_mode: str, work: Callable[[Any], T]) -> T:
        try:
            if access_mode == self._neo4j.WRITE_ACCESS and self._open_transaction is not None:
                return work(self._open_transaction)
            with self._session(access_mode) as session:
                if access_mode == self._neo4j.READ_ACCESS:
                    return session.execute_read(work)
                return session.execute_write(work)
        except _WriteInReadMode:
            raise
        except BaseException as error:
            self._raise_translated(error)
            raise

    def _raise_translated(self, error: BaseException) -> None:
        """Raise ``error`` as explgraph sees it: Ctrl-C as KeyboardInterrupt, also when the driver
        failed on its way out of one (a half-sent message: ``PackStream map key must be a
        string``, ``BufferError``), after dropping the connections; driver and server errors as
        :func:`translate_error`. Returns for anything else (the caller re-raises it)."""
        if caused_by_interrupt(error):
            self._drop_connections()
            raise KeyboardInterrupt from None
        if isinstance(
            error,
            (self._neo4j.exceptions.Neo4jError, self._neo4j.exceptions.DriverError, OSError),
        ):
            raise translate_error(error, self.settings) from None


__all__ = ["BATCH_ROWS", "BoltStore", "translate_error"]
