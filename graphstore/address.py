"""Store addresses: a Bolt URI or an embedded store folder, validated before anything opens.

A URI with any other scheme (``http://…``), a bare word with a colon scheme, or a Bolt URI with
credentials in it is refused with one line; a folder address is fine whether or not the folder
exists, but :func:`check_store_folder` says whether it holds a store, is empty, or belongs to
something else (so ``mine`` never adds a database to another program's folder and ``delete``
never creates a store).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from explgraph.core.errors import StoreError

BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
DATABASE_FILE = "graph.lbug"
# files explgraph keeps beside the database (its writer lock, safety copy, marker, log)
_OWN_PREFIXES = ("explgraph-", f"{DATABASE_FILE}.explgraph-")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


@dataclass(frozen=True)
class StoreAddress:
    """A validated store address: ``kind`` is ``'bolt'`` (``uri``) or ``'folder'`` (``path``)."""

    kind: str
    uri: str = ""
    path: Path | None = None


def parse_store_address(spec: str) -> StoreAddress:
    """Validate ``spec`` and say which engine serves it.

    Raises:
        StoreError: an unknown URI scheme, a Bolt URI without a host or with credentials in it
            (the message never repeats the password), or an empty address.
    """
    text = spec.strip()
    if not text:
        raise StoreError("empty store address: pass --store FOLDER or a bolt:// / neo4j:// URI")
    match = _SCHEME.match(text)
    if match is None:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\\/]", text) and not re.match(
            r"^[A-Za-z]:[\\/]", text
        ):
            scheme = text.split(":", 1)[0]
            raise StoreError(
                f"store address {scheme}:… is neither a folder nor a Bolt URI: use a folder "
                f"path or bolt://host:7687 (schemes: {', '.join(BOLT_SCHEMES)})"
            )
        return StoreAddress("folder", path=Path(text).expanduser())
    scheme = match.group(1).lower()
    if scheme not in BOLT_SCHEMES:
        raise StoreError(
            f"store address scheme {scheme}:// is not supported: use a folder path or one of "
            f"{', '.join(s + '://' for s in BOLT_SCHEMES)}"
        )
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[-1]
        raise StoreError(
            f"credentials in the store URI are not accepted: use {scheme}://{host} and set "
            "NEO4J_USERNAME / NEO4J_PASSWORD in the environment"
        )
    if not parts.hostname:
        raise StoreError(f"store URI {text!r} names no host: use {scheme}://host:7687")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise StoreError(
            f"store URI {text!r} has a port that is not a number: use {scheme}://host:7687"
        ) from None
    return StoreAddress("bolt", uri=text)


def folder_state(folder: Path) -> str:
    """``'store'`` (holds a LadybugDB database), ``'missing'``, ``'empty'`` or ``'foreign'``."""
    if not folder.exists():
        return "missing"
    if not folder.is_dir():
        return "foreign"
    names = {entry.name for entry in folder.iterdir()}
    if DATABASE_FILE in names:
        return "store"
    if not {name for name in names if not name.startswith(_OWN_PREFIXES)}:
        return "empty"
    return "foreign"


__all__ = ["BOLT_SCHEMES", "DATABASE_FILE", "StoreAddress", "folder_state", "parse_store_address"]
