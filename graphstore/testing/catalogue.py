"""Every Cypher text the Bolt engine sends, enumerated for linting, plus the caller's own.

The store does not know the query layer: a caller adds the texts of its own queries with
:func:`named_statements` (the Cypher-lint test adds every canned query's Bolt text). The
engine's own statements are many f-strings over labels and relationship types, so instead of a
hand-kept copy that could drift, :func:`bolt_statements` drives the real code paths (write,
replace and its roll-forward, delete, repair, garbage, list/describe, upserts of every label
and type) on a :class:`BoltStore` whose transport records each statement instead of sending
it. Used by ``tests/unit/test_cypher_lint.py``, which checks them all with Neo4j's own parser
and semantic analysis (``tools/cypher-lint``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from graphstore import bolt_lease
from graphstore.bolt_engine import BoltStore
from graphstore.lifecycle import staging_id
from graphstore.readonly import SNAPSHOT_STATEMENTS
from graphstore.schema import NODES, RELATIONSHIPS
from graphstore.settings import BoltSettings
from graphstore.statements import classify
from graphstore.testing.synthetic import LayerShape, synthetic_records


@dataclass(frozen=True)
class Statement:
    """One Cypher text, where it comes from, and the names of the parameters it is sent with."""

    source: str
    cypher: str
    parameters: tuple[str, ...]


class _AnyRow(dict[str, Any]):
    """A result row that answers every column with ``"0"`` (a string that ``int()`` reads as 0)."""

    def __missing__(self, key: str) -> str:
        return "0"


class _Result:
    def __init__(self) -> None:
        self.counters = type("Counters", (), {"contains_updates": False})()
        self.query_type = "r"

    def __iter__(self) -> Any:
        return iter(())

    def keys(self) -> list[str]:
        return []

    def consume(self) -> _Result:
        return self


class _RecordingBoltStore(BoltStore):
    """A BoltStore without a server: every statement is recorded, every query gets one row."""

    def __init__(self) -> None:  # no driver, no connection
        import neo4j

        self._neo4j = neo4j
        self.spec = "bolt://recording"
        self.read_only = False
        self.settings = BoltSettings("bolt://recording", "neo4j", "", None)
        self._server_types = False
        self._known_read = set()
        self._open_transaction = None
        self._lease = None
        self.notices = []
        self.sent: dict[str, set[str]] = {}

    @contextlib.contextmanager
    def _switch_transaction(self) -> Iterator[None]:  # no server: statements are recorded
        yield

    def _record(self, cypher: str, params: dict[str, Any] | None) -> None:
        self.sent.setdefault(cypher, set()).update(params or {})

    def query(
        self, cypher: str, params: Any = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        self._record(cypher, dict(params or {}))
        return [_AnyRow()]

    def _run_alone(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._record(statement, params)
        return [{"token": params.get("token")}]  # the lease is always free here

    def _run(self, access_mode: str, work: Any) -> Any:
        store = self

        class _Tx:
            def run(self, cypher: str, params: dict[str, Any] | None = None) -> _Result:
                store._record(cypher, params)
                return _Result()

        return work(_Tx())

    def close(self) -> None:
        return None


def _drive(store: _RecordingBoltStore) -> None:
    """Run every store operation once, so that each statement it can send is recorded."""
    records = synthetic_records(
        "m",
        channels=2,
        layers=(LayerShape("low", 4, 8.0, 3), LayerShape("high", 2, 16.0, 2)),
        n_images=2,
        fires_per_image=2,
    )
    store.ensure_schema()
    for text in (bolt_lease.READ, bolt_lease.RENEW, bolt_lease.LIVE):  # not reached without a
        store._record(text, dict.fromkeys(classify(text).parameters))  # holder or the timer
    store.backfill_precomputed()
    store.write_model(records)
    store._finish_switch(staging_id("m"))
    store._delete_model_data("m")
    store.delete_model("m")
    store.garbage()
    store._repair(
        {
            "staging": {staging_id("a"): "switching", staging_id("b"): "staging"},
            "unfinished": {"c": "deleting"},
            "orphans": {"Pattern": 1},
        }
    )
    store.repair()
    store.list_models()
    store.describe_model("m")
    store.info()
    store.set_model_status("m", "complete")
    for spec in NODES:
        table = _nulls(spec.columns)
        store._insert_nodes(spec.label, table)
        store._upsert_nodes(spec.label, table, [p.name for p in spec.properties])
        store._upsert_nodes(spec.label, table, [])
    for rel in RELATIONSHIPS:
        table = _nulls(rel.columns)
        store._insert_relationships(rel.type, table)
        store._upsert_relationships(rel.type, table)


def _nulls(columns: tuple[str, ...]) -> pa.Table:
    return pa.table({name: pa.nulls(1) for name in columns})


def bolt_statements() -> list[Statement]:
    """Every distinct statement the Bolt engine sends, with the parameter names it binds."""
    store = _RecordingBoltStore()
    _drive(store)
    return [
        Statement("graphstore.bolt_engine", cypher, tuple(sorted(params)))
        for cypher, params in sorted(store.sent.items())
    ] + [Statement("graphstore.readonly", text, ()) for text in SNAPSHOT_STATEMENTS.values()]


def named_statements(source: str, texts: Iterable[tuple[str, str]]) -> list[Statement]:
    """``(name, cypher)`` pairs as statements of ``source``, with the parameters each uses."""
    return [
        Statement(f"{source}:{name}", text, tuple(sorted(classify(text).parameters)))
        for name, text in texts
    ]


def all_statements(extra: Sequence[Statement] = ()) -> list[Statement]:
    """``extra`` first (e.g. the canned queries' texts), then the engine's statements."""
    return [*extra, *bolt_statements()]


__all__ = ["Statement", "all_statements", "bolt_statements", "named_statements"]
