"""What a store looks like from outside explgraph, to prove a statement changed nothing.

:func:`observe` reads a store without going through the code under test: an embedded store's
files byte by byte, a Bolt server through the raw driver (labels, relationship types, indexes,
constraints, node and relationship counts by label and type, the property keys in use, and a
digest of every node's and relationship's properties). :func:`canary` writes a file with a
random secret that no output may ever show.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

from tests.helpers.stores import env_settings

_BOLT_VIEWS = {
    "labels": "CALL db.labels() YIELD label RETURN collect(label) AS v",
    "types": "CALL db.relationshipTypes() YIELD relationshipType "
    "RETURN collect(relationshipType) AS v",
    "indexes": "SHOW INDEXES YIELD name, labelsOrTypes, properties "
    "RETURN collect([name, labelsOrTypes, properties]) AS v",
    "constraints": "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS v",
    "nodes": "MATCH (n) RETURN collect([labels(n), properties(n)]) AS v",
    "relationships": "MATCH ()-[r]->() RETURN collect([type(r), properties(r)]) AS v",
}


def folder_bytes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> SHA-256 of its bytes)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def bolt_view(uri: str) -> dict[str, Any]:
    """The server's schema and contents (credentials from the ``NEO4J_*`` variables), each view
    sorted and the contents digested."""
    import neo4j

    settings = env_settings()
    view: dict[str, Any] = {}
    with neo4j.GraphDatabase.driver(uri, auth=(settings.user, settings.password)) as driver:
        for name, statement in _BOLT_VIEWS.items():
            records, _, _ = driver.execute_query(statement, database_=settings.database)
            values = sorted(json.dumps(v, sort_keys=True, default=str) for v in records[0]["v"])
            if name in ("nodes", "relationships"):
                digest = hashlib.sha256("\n".join(values).encode()).hexdigest()
                view[name] = (len(values), digest)
            else:
                view[name] = values
    return view


def observe(spec: str) -> dict[str, Any]:
    """:func:`folder_bytes` of an embedded store, :func:`bolt_view` of a Bolt server."""
    return bolt_view(spec) if "://" in spec else folder_bytes(Path(spec))


def canary(folder: Path) -> tuple[Path, str]:
    """A CSV file in ``folder`` holding a random secret, and the secret."""
    secret = f"canary{secrets.token_hex(12)}"
    path = folder / "canary.csv"
    path.write_text(f"{secret}\n{secret}\n")
    return path, secret


__all__ = ["bolt_view", "canary", "folder_bytes", "observe"]
