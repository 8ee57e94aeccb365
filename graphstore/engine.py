"""The engine interface: what every store engine (LadybugDB, Bolt) provides.

:class:`StoreEngine` is the abstract store: run Cypher (:meth:`~StoreEngine.query`,
:meth:`~StoreEngine.query_frame`), create the schema, bulk-insert and upsert Arrow tables, open
and close. The model lifecycle (:mod:`graphstore.lifecycle`) is built on these primitives
alone, plus the hooks in the second half of the class, which an engine overrides where it can
do better (one big transaction, batched deletes). An engine subclasses
:class:`graphstore.lifecycle.GraphStore`, the type callers use.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from explgraph.core.errors import ReadOnlyViolation

if TYPE_CHECKING:  # pandas and pyarrow load only when a model is written: reads start fast
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class BulkWrite:
    """What a write transaction that bulk-loads is doing, for engines that must protect it.

    ``operation`` and ``model_id`` name it in what an interrupted one leaves behind (LadybugDB:
    the marker of its safety copy); ``verify`` runs after the commit and raises when the
    written data is not what was meant, and the engine then undoes the transaction where it
    can (LadybugDB restores its safety copy).
    """

    operation: str
    model_id: str | None = None
    verify: Callable[[], None] | None = None


class StoreEngine(ABC):
    """An open graph store: Cypher, schema, bulk writes. Use as a context manager."""

    #: engine name shown by ``explgraph store info``
    engine: str = ""

    #: True when the engine runs a whole replacement in one transaction (LadybugDB); False for
    #: engines whose transactions must stay small (Bolt), which use the staging protocol.
    transactional: bool = False

    def __init__(self, spec: str, *, read_only: bool) -> None:
        self.spec = spec
        self.read_only = read_only
        #: one line for each thing the open found and did that the user should hear of (an
        #: interrupted write undone, a torn log dropped); the CLI prints them as warnings
        self.notices: list[str] = []

    # primitives every engine implements ------------------------------------------------------

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables / constraints and indexes if they do not exist (idempotent)."""

    @abstractmethod
    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``cypher`` with ``params`` and return its rows as dicts keyed by column name.

        Without ``write`` the engine itself enforces read-only: a statement that would change
        the store raises :class:`~explgraph.core.errors.ReadOnlyViolation` and changes nothing.
        """

    def query_frame(self, cypher: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """A read-only query's rows as a data frame (for columns of plain values).

        Engines with a columnar result path override this (LadybugDB reads Arrow, with no
        per-row Python objects); the default builds the frame from :meth:`query`.
        """
        import pandas as pd

        return pd.DataFrame(self.query(cypher, params))

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

    def reader(self) -> Self | None:
        """A read-only handle for another thread that shares this one's database (LadybugDB: a
        connection of its own on the same database); None where the engine shares nothing, so
        the caller opens another handle. Closing it leaves this handle open."""
        return None

    def interrupt(self) -> bool:
        """Stop the statement this handle is running, from another thread: the statement
        raises a StoreError and the handle stays usable. False where the engine cannot."""
        return False

    # hooks the model lifecycle uses; an engine overrides them where it can do better ---------

    @contextlib.contextmanager
    def _transaction(self, *, bulk: BulkWrite | None = None) -> Iterator[None]:
        """One write transaction around the block (only when :attr:`transactional`).

        ``bulk`` says the block bulk-loads beside other writes (a replace, an upsert): the
        engine makes the whole transaction survive its own crash (LadybugDB: a safety copy of
        the store, see :mod:`graphstore.safety_copy`).
        """
        raise NotImplementedError
        yield  # pragma: no cover

    @contextlib.contextmanager
    def _switch_transaction(self) -> Iterator[None]:
        """One write transaction around the switch (delete old copy + rename the staged one),
        so a reader sees the old complete copy or the new one, never a half of either. The
        engine overrides it; the default runs the block as it is."""
        yield

    def _delete_where_model(self, label: str, model_id: str) -> None:
        """Delete every ``label`` node of ``model_id`` with its edges."""
        self.query(
            f"MATCH (n:{label}) WHERE n.model_id = $id DETACH DELETE n",
            {"id": model_id},
            write=True,
        )

    def _delete_orphans(self, label: str, owners: list[str]) -> None:
        """Delete every ``label`` node whose ``model_id`` is not in ``owners``."""
        self.query(
            f"MATCH (n:{label}) WHERE NOT n.model_id IN $ids DETACH DELETE n",
            {"ids": owners},
            write=True,
        )

    def _model_lock(self, model_id: str) -> contextlib.AbstractContextManager[None]:
        """Exclude other writers of ``model_id`` for the block, or raise
        :class:`~explgraph.core.errors.StoreUnavailable` naming the one that writes it. The
        default does nothing: an engine whose store admits one writer at all (LadybugDB) needs
        no more."""
        return contextlib.nullcontext()

    def _while_writer(self) -> tuple[str, dict[str, Any]]:
        """A statement prefix (and its parameters) that matches a row only while this process
        still holds :meth:`_model_lock`; ``("", {})`` when the engine needs none."""
        return "", {}

    def live_writers(self) -> list[str]:
        """One line per model another process is writing now (Bolt: the live leases)."""
        return []

    def recoveries(self) -> list[str]:
        """One line for each interrupted write the engine undid by itself (newest last)."""
        return []

    def forget_recoveries(self) -> None:
        """Clear what :meth:`recoveries` reports (after it was shown by ``store repair``)."""
        return None

    # access mode and context manager ---------------------------------------------------------

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


__all__ = ["BulkWrite", "StoreEngine"]
