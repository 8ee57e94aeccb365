"""graphstore: the explanatory-graph schema and its engines (embedded LadybugDB, Neo4j Bolt).

Open a store with :func:`open_store` (a folder path, or a ``bolt://`` / ``neo4j://`` URI), write a
mined model as :class:`GraphRecords` with :meth:`GraphStore.write_model`, and read it back with
:meth:`GraphStore.query`, :meth:`GraphStore.list_models` and :meth:`GraphStore.describe_model`.
"""

from graphstore.api import STATUSES, GraphStore, open_store
from graphstore.records import GraphRecords, filter_id, layer_id, pattern_id
from graphstore.schema import NODES, RELATIONSHIPS

__all__ = [
    "NODES",
    "RELATIONSHIPS",
    "STATUSES",
    "GraphRecords",
    "GraphStore",
    "filter_id",
    "layer_id",
    "open_store",
    "pattern_id",
]
