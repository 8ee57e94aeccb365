"""Which engine serves which store address, and :func:`open_store`, the one way to open a store.

The registry maps the kind of a parsed address (:func:`graphstore.address.parse_store_address`:
``'bolt'`` for the ``bolt://`` / ``neo4j://`` schemes, ``'folder'`` for a path) to the function
that opens it. Engines import only the store interface; this module imports the engines (on
first use, so the driver of an engine that is not used never loads); nothing imports it back.
"""

from __future__ import annotations

from collections.abc import Callable

from graphstore.address import StoreAddress, parse_store_address
from graphstore.lifecycle import GraphStore
from graphstore.settings import BoltSettings, StoreSettings

#: opens a store: (address, read_only, create, settings) -> an open store
EngineOpener = Callable[[StoreAddress, bool, bool, StoreSettings | None], GraphStore]


def _open_bolt(
    address: StoreAddress, read_only: bool, create: bool, settings: StoreSettings | None
) -> GraphStore:
    from graphstore.bolt_engine import BoltStore

    bolt = BoltSettings.for_uri(address.uri, settings)
    return BoltStore(address.uri, read_only=read_only, settings=bolt)


def _open_folder(
    address: StoreAddress, read_only: bool, create: bool, settings: StoreSettings | None
) -> GraphStore:
    from graphstore.ladybug_engine import LadybugStore

    return LadybugStore(str(address.path), read_only=read_only, create=create)


#: address kind -> the engine that serves it
ENGINES: dict[str, EngineOpener] = {"bolt": _open_bolt, "folder": _open_folder}


def open_store(
    spec: str,
    *,
    read_only: bool = False,
    create: bool = True,
    settings: StoreSettings | None = None,
) -> GraphStore:
    """Open the store named by ``spec``: a Bolt URI, or a folder for the embedded engine.

    Bolt credentials and database come from ``settings`` (the CLI fills them from
    ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``), never from the URI. A new
    embedded store is created only when ``create`` (and not ``read_only``) and only in a missing
    or empty folder.

    Raises:
        StoreError: a URI scheme other than bolt/neo4j, credentials in the URI, no store at a
            folder that must hold one, or a non-empty folder that holds no store.
        StoreUnavailable: the server cannot be reached, or another process is writing the
            embedded store.
        AuthenticationFailed: the server refused the credentials.
    """
    address = parse_store_address(spec)
    return ENGINES[address.kind](address, read_only, create, settings)


__all__ = ["ENGINES", "EngineOpener", "open_store"]
