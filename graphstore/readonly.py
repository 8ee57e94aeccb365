"""Read-only on a Bolt server, checked after the fact: the server's schema before and after a read.

Neo4j refuses every change in a READ transaction. ArcadeDB ignores the access mode; the Bolt
engine rolls back a read that reports updates, but ArcadeDB's schema changes (the vertex type
behind a new label, an index, a constraint) are not transactional and survive the rollback. So
a read-only statement on Bolt runs between two snapshots of what the server lists: labels,
relationship types, property keys (ArcadeDB lists none), indexes and constraints, each one
statement in a single read transaction (the server's unlisted parts are dropped after the first
try). A change the statement names (the new label, or the word INDEX / CONSTRAINT / CALL for an
index or constraint) is reported truthfully and refused: explgraph cannot undo it. A change it
does not name is another client's (a writer creating its schema meanwhile): logged, not refused.
The statement classifier (:mod:`graphstore.statements`) refuses such statements before they run;
this is the last line behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from explgraph.core.errors import ReadOnlyViolation, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")
Rows = list[dict[str, Any]]

#: what a snapshot lists, each as one statement returning a list ``names``
SNAPSHOT_STATEMENTS: dict[str, str] = {
    "label": "CALL db.labels() YIELD label RETURN collect(label) AS names",
    "relationship type": (
        "CALL db.relationshipTypes() YIELD relationshipType "
        "RETURN collect(relationshipType) AS names"
    ),
    "property key": "CALL db.propertyKeys() YIELD propertyKey RETURN collect(propertyKey) AS names",
    "index": "SHOW INDEXES YIELD name RETURN collect(name) AS names",
    "constraint": "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names",
}
# words that name an index or constraint change in a statement
_SCHEMA_WORDS = ("index", "constraint", "call")


@dataclass(frozen=True)
class SchemaChange:
    """One name that appeared or disappeared between two snapshots."""

    kind: str  # "label", "relationship type", "property key", "index", "constraint"
    name: str
    created: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.name} was {'created' if self.created else 'dropped'}"

    def named_in(self, cypher: str) -> bool:
        """Whether ``cypher`` names the change: its name, or for an index or constraint the word
        INDEX, CONSTRAINT or CALL, anywhere in the text (comments and strings too, so that a
        statement the lexer misread is still held to what it says)."""
        text = cypher.lower()
        if self.name.lower() in text:
            return True
        return self.kind in ("index", "constraint") and any(w in text for w in _SCHEMA_WORDS)


Snapshot = dict[str, frozenset[str]]


def changes_between(before: Snapshot, after: Snapshot) -> list[SchemaChange]:
    """What appeared or disappeared, for every kind both snapshots list."""
    found = []
    for kind in (kind for kind in before if kind in after):
        found += [SchemaChange(kind, name, True) for name in sorted(after[kind] - before[kind])]
        found += [SchemaChange(kind, name, False) for name in sorted(before[kind] - after[kind])]
    return found


class SchemaWatch:
    """Snapshots of a Bolt server's schema, through ``read`` (the store's read transactions)."""

    def __init__(self, read: Callable[[Callable[[Any], Any]], Any]) -> None:
        self._read = read
        self._statements: dict[str, str] | None = None  # learnt on the first snapshot

    def snapshot(self) -> Snapshot:
        """The names the server lists now, one read transaction (the first: one per part)."""
        if self._statements is None:
            self._statements = {}
            for kind, statement in SNAPSHOT_STATEMENTS.items():
                try:
                    self._read(_names_work({kind: statement}))
                except StoreError as error:  # this server does not list them
                    log.debug("the server cannot list %s: %s", kind, error)
                    continue
                self._statements[kind] = statement
        if not self._statements:
            return {}
        result: Snapshot = self._read(_names_work(self._statements))
        return result


def _names_work(statements: dict[str, str]) -> Callable[[Any], Snapshot]:
    def work(tx: Any) -> Snapshot:
        snapshot = {}
        for kind, statement in statements.items():
            rows = list(tx.run(statement))
            snapshot[kind] = frozenset(str(name) for name in (rows[0]["names"] if rows else []))
        return snapshot

    return work


def watched_read(watch: SchemaWatch, cypher: str, run: Callable[[], tuple[Rows, bool]]) -> Rows:
    """Run a read-only statement (``run`` gives its rows and whether the server reported and
    rolled back updates) between two snapshots; refuse it when it changed the schema.

    Raises:
        ReadOnlyViolation: the statement changed the schema (the message names each change and
            says it stays), or it tried to change data (rolled back, the schema unchanged).
    """
    before = watch.snapshot()
    try:
        rows, updated = run()
    except StoreError as error:  # a statement that failed may still have changed the schema
        _refuse_own_changes(cypher, changes_between(before, watch.snapshot()), error)
        raise
    _refuse_own_changes(cypher, changes_between(before, watch.snapshot()))
    if updated:
        raise ReadOnlyViolation(
            "the query tried to change the store; the server rolled its changes back and its "
            "schema is unchanged: add --write to change the store"
        )
    return rows


def _refuse_own_changes(
    cypher: str, changes: list[SchemaChange], cause: Exception | None = None
) -> None:
    """Refuse with every change ``cypher`` names; log the others (another client's)."""
    if not changes:
        return
    own = [change for change in changes if change.named_in(cypher)]
    others = [change for change in changes if change not in own]
    if others:
        log.warning(
            "the server's schema changed while a read ran, by another client: %s",
            "; ".join(map(str, others)),
        )
    if own:
        raise ReadOnlyViolation(
            f"the server changed its schema: {'; '.join(map(str, own))}; explgraph could not "
            "undo it (the statement ran read-only: add --write to change the store)"
        ) from cause


__all__ = ["SNAPSHOT_STATEMENTS", "SchemaChange", "SchemaWatch", "changes_between", "watched_read"]
