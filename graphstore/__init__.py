"""graphstore: the explanatory-graph schema and its engines (embedded LadybugDB, Neo4j Bolt).

Open a store with :func:`open_store` (a folder path, or a ``bolt://`` / ``neo4j://`` URI), write a
mined model as :class:`GraphRecords` with :meth:`GraphStore.write_model`, and read it back with
:meth:`GraphStore.query`, :meth:`GraphStore.list_models` and :meth:`GraphStore.describe_model`.

Inside: :mod:`graphstore.engine` (the engine interface), :mod:`graphstore.lifecycle` (write,
replace, switch, repair, garbage: :class:`GraphStore`), :mod:`graphstore.registry` (address ->
engine, :func:`open_store`), the engines :mod:`graphstore.bolt_engine` and
:mod:`graphstore.ladybug_engine`, and :mod:`graphstore.testing` for tests and benchmarks.
"""

from typing import TYPE_CHECKING, Any

from graphstore.lifecycle import STATUSES, GraphStore, model_params
from graphstore.registry import open_store
from graphstore.schema import NODES, RELATIONSHIPS
from graphstore.settings import StoreSettings

if TYPE_CHECKING:
    from graphstore.records import GraphRecords, filter_id, layer_id, pattern_id, pattern_ids

_RECORDS = ("GraphRecords", "filter_id", "layer_id", "pattern_id", "pattern_ids")


def __getattr__(name: str) -> Any:
    """``graphstore.records`` (pandas, pyarrow) loads on first use, so reads start fast."""
    if name in _RECORDS:
        from graphstore import records

        return getattr(records, name)
    raise AttributeError(f"module 'graphstore' has no attribute {name!r}")


__all__ = [
    "NODES",
    "RELATIONSHIPS",
    "STATUSES",
    "GraphRecords",
    "GraphStore",
    "StoreSettings",
    "filter_id",
    "layer_id",
    "model_params",
    "open_store",
    "pattern_id",
    "pattern_ids",
]
