"""The store's format version: the one ``Store`` node (:data:`graphstore.schema.STORE_KEY`).

Each model carries its own ``Model.format_version`` too (null for models written before
versions existed: format 1); a command reads what it needs from the model and says so in one
line when the model's format lacks it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from explgraph.core.errors import StoreError
from graphstore.lifecycle import GraphStore
from graphstore.schema import FORMAT_VERSION, STORE_KEY

log = logging.getLogger(__name__)

#: The format of a model or store written before versions existed.
FIRST_FORMAT = 1
#: The statements this module sends (both engines accept them; the Cypher-lint test checks them).
READ_STORE_VERSION = "MATCH (s:Store {store_id: $id}) RETURN s.format_version AS version"
WRITE_STORE_VERSION = (
    "MERGE (s:Store {store_id: $id}) SET s.format_version = $version, s.updated = $updated"
)


def store_format_version(store: GraphStore) -> int:
    """The newest format written into ``store`` (:data:`FIRST_FORMAT` for an older store)."""
    try:
        rows = store.query(READ_STORE_VERSION, {"id": STORE_KEY})
    except StoreError as error:  # a read-only LadybugDB store older than the Store table
        log.debug("no Store node readable (%s): format %d", error, FIRST_FORMAT)
        return FIRST_FORMAT
    version = rows[0]["version"] if rows else None
    return int(version) if version is not None else FIRST_FORMAT


def model_format_version(model: dict[str, Any]) -> int:
    """The format a model (``describe_model``'s dict) was written in."""
    version = model.get("format_version")
    return int(version) if version is not None else FIRST_FORMAT


def mark_store_format(store: GraphStore, version: int = FORMAT_VERSION) -> None:
    """Record that ``version`` was written into ``store`` (a newer recorded one is kept)."""
    if store_format_version(store) >= version:
        return
    store.query(
        WRITE_STORE_VERSION,
        {
            "id": STORE_KEY,
            "version": version,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        write=True,
    )


__all__ = [
    "FIRST_FORMAT",
    "READ_STORE_VERSION",
    "WRITE_STORE_VERSION",
    "mark_store_format",
    "model_format_version",
    "store_format_version",
]
