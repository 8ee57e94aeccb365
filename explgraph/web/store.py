"""One read-only store handle shared by every request thread.

The web server answers requests on a thread pool, and an explanation job runs on a thread of
its own, but an embedded LadybugDB database wants one handle per process. :class:`SharedStore`
wraps the read-only handle and serialises its queries with a lock, one query at a time, so a
long explanation never holds the store between its queries and pages keep rendering.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from graphstore import GraphStore, open_store
from graphstore.settings import StoreSettings


class SharedStore(GraphStore):
    """A read-only :class:`GraphStore` whose queries are serialised by a lock.

    Every engine-neutral read (``list_models``, ``describe_model`` ...) goes through
    :meth:`query`, so it is serialised too. Writes are refused like on any read-only handle.
    """

    def __init__(self, spec: str, *, settings: StoreSettings | None = None) -> None:
        super().__init__(spec, read_only=True)
        self._inner = open_store(spec, read_only=True, settings=settings)
        self.engine = self._inner.engine
        self._lock = threading.RLock()

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run a read query on the shared handle (``write=True`` is refused by the engine)."""
        with self._lock:
            return self._inner.query(cypher, params, write=write)

    def ensure_schema(self) -> None:
        """Nothing to do on a read-only handle."""

    def close(self) -> None:
        """Release the underlying handle."""
        with self._lock:
            self._inner.close()

    # a read-only handle never writes: every bulk primitive refuses
    def _insert_nodes(self, label: str, table: pa.Table) -> None:
        self._require_write("write nodes")

    def _insert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._require_write("write relationships")

    def _upsert_nodes(self, label: str, table: pa.Table, columns: Sequence[str]) -> None:
        self._require_write("write nodes")

    def _upsert_relationships(self, rel_type: str, table: pa.Table) -> None:
        self._require_write("write relationships")


__all__ = ["SharedStore"]
