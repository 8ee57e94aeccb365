"""Explainer networks in the store: one ``Explainer`` node per explained layer, with its filters.

Layout (graphstore.schema)::

    (:Model)-[:HAS_EXPLAINER]->(:Explainer)-[:EXPLAINS]->(:Layer)
    (:Explainer)-[:HAS_EXPLAINER_FILTER]->(:ExplainerFilter)

Every node carries its performer's ``model_id`` and an id that starts with it, so deleting or
replacing the model (graphstore.lifecycle deletes every label with a ``model_id``) removes its
explainers with it. :func:`write_explainer` replaces one explainer in one transaction on both
engines (LadybugDB: a bulk transaction with its safety copy; Bolt: one explicit transaction).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from explgraph.core.errors import InputError, UnknownModel
from graphstore.engine import BulkWrite

if TYPE_CHECKING:
    from graphstore.lifecycle import GraphStore

#: Deletes one explainer's filters, then the explainer (its edges with them).
DELETE_FILTERS = "MATCH (f:ExplainerFilter) WHERE f.explainer = $id DETACH DELETE f"
DELETE_EXPLAINER = "MATCH (e:Explainer) WHERE e.explainer_id = $id DETACH DELETE e"
#: The stored layer an explainer explains (``$model``, ``$layer``), and the model's status.
FIND_LAYER = (
    "MATCH (m:Model {model_id: $model}) OPTIONAL MATCH (m)-[:HAS_LAYER]->(l:Layer) "
    "WHERE l.name = $layer RETURN m.status AS status, l.layer_id AS layer_id"
)
#: The statements this module sends besides the engines' bulk writes (linted for Bolt).
STATEMENTS = (
    ("delete explainer filters", DELETE_FILTERS),
    ("delete explainer", DELETE_EXPLAINER),
    ("find explained layer", FIND_LAYER),
)


def explainer_id(model_id: str, layer: str, *, control: bool = False) -> str:
    """The id of the explainer (or of its no-filter-loss control) of ``layer`` of a model."""
    return f"{model_id}/{layer}/explainer" + ("-control" if control else "")


def explainer_filter_id(explainer: str, index: int) -> str:
    """The id of filter ``index`` of the explainer ``explainer``."""
    return f"{explainer}/f{index}"


@dataclass(frozen=True)
class ExplainerRows:
    """One explainer as store rows.

    Attributes:
        explainer: the ``Explainer`` node's columns; ``model_id``, ``layer`` and ``control``
            are required, the id is derived from them.
        filters: one row per interpretable filter: ``idx``, ``purity``, ``best_part``.
    """

    explainer: Mapping[str, Any]
    filters: pd.DataFrame

    @property
    def model_id(self) -> str:
        """The performer's model id."""
        return str(self.explainer["model_id"])

    @property
    def layer(self) -> str:
        """The explained layer's name."""
        return str(self.explainer["layer"])

    @property
    def id(self) -> str:
        """The explainer's store key."""
        return explainer_id(self.model_id, self.layer, control=bool(self.explainer["control"]))

    def node_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The ``Explainer`` row and the ``ExplainerFilter`` rows, keys filled in."""
        node = pd.DataFrame([{**self.explainer, "explainer_id": self.id}])
        filters = self.filters.assign(
            explainer_filter_id=[explainer_filter_id(self.id, int(i)) for i in self.filters["idx"]],
            model_id=self.model_id,
            explainer=self.id,
            layer=self.layer,
        )
        return node, filters


def write_explainer(store: GraphStore, rows: ExplainerRows) -> str:
    """Write ``rows`` into ``store``, replacing that explainer if it is there; return its id.

    One transaction: the old explainer and its filters go, the new ones and their edges
    (to the model, the layer and the filters) come, or nothing changes.

    Raises:
        UnknownModel: the store holds no model ``rows.model_id``.
        InputError: the model is not complete, or has no layer ``rows.layer``.
    """
    store._require_write("write an explainer")
    store.ensure_schema()
    node, filters = rows.node_frames()
    with store._model_lock(rows.model_id):
        layer_id = _explained_layer(store, rows.model_id, rows.layer)
        _replace(store, rows, layer_id, node, filters)
    return rows.id


def _replace(
    store: GraphStore, rows: ExplainerRows, layer_id: str, node: pd.DataFrame, filters: pd.DataFrame
) -> None:
    """Delete the explainer ``rows.id`` and write ``node``, ``filters`` and their edges."""
    with _one_transaction(store, rows.model_id):
        store.query(DELETE_FILTERS, {"id": rows.id}, write=True)
        store.query(DELETE_EXPLAINER, {"id": rows.id}, write=True)
        store.write_nodes("Explainer", node)
        store.write_nodes("ExplainerFilter", filters)
        owner = pd.DataFrame({"src": [rows.model_id], "dst": [rows.id]})
        store.write_relationships("HAS_EXPLAINER", owner)
        store.write_relationships("EXPLAINS", pd.DataFrame({"src": [rows.id], "dst": [layer_id]}))
        store.write_relationships(
            "HAS_EXPLAINER_FILTER",
            pd.DataFrame({"src": rows.id, "dst": filters["explainer_filter_id"]}),
        )


def _explained_layer(store: GraphStore, model_id: str, layer: str) -> str:
    """The ``layer_id`` of ``layer`` of the complete model ``model_id`` (see write_explainer)."""
    found = store.query(FIND_LAYER, {"model": model_id, "layer": layer})
    if not found:
        raise UnknownModel(
            f"no model {model_id!r} in this store: mine the performer first "
            "(explgraph models lists the stored ones)"
        )
    if found[0]["status"] != "complete":
        status = found[0]["status"]
        raise InputError(f"model {model_id!r} is {status!r}, not complete: mine it again")
    if found[0]["layer_id"] is None:
        raise InputError(
            f"model {model_id!r} has no stored layer {layer!r}: mine that layer first "
            f"(explgraph show {model_id} lists its layers)"
        )
    return str(found[0]["layer_id"])


@contextlib.contextmanager
def _one_transaction(store: GraphStore, model_id: str) -> Iterator[None]:
    if store.transactional:
        with store._transaction(bulk=BulkWrite("write explainer", model_id)):
            yield
    else:
        with store._switch_transaction():
            yield


__all__ = [
    "STATEMENTS",
    "ExplainerRows",
    "explainer_filter_id",
    "explainer_id",
    "write_explainer",
]
