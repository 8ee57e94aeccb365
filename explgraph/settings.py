"""Settings from the command line and the environment.

Store selection, in order: ``--store``, ``EXPLGRAPH_STORE``, ``NEO4J_URI``, then the default
embedded store folder. Neo4j credentials come only from the environment (``NEO4J_USERNAME``
or its alias ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``), never the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BOLT_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def default_store_path() -> Path:
    """The embedded store used when nothing else is named: ``$XDG_DATA_HOME/explgraph/store``."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "explgraph" / "store"


def default_cache_dir() -> Path:
    """Where feature caches and mining checkpoints live: ``$EXPLGRAPH_CACHE`` or XDG cache."""
    explicit = os.environ.get("EXPLGRAPH_CACHE")
    if explicit:
        return Path(explicit)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "explgraph"


@dataclass(frozen=True)
class BoltSettings:
    """Where and how to reach a Bolt server."""

    uri: str
    user: str
    password: str = field(repr=False)  # never in a repr, log or message
    database: str | None = None


def is_bolt_uri(spec: str) -> bool:
    """True if ``spec`` names a Bolt server rather than an embedded store folder."""
    return spec.lower().startswith(BOLT_SCHEMES)


def resolve_store_spec(cli_value: str | None) -> str:
    """Pick the store: the CLI value, then ``EXPLGRAPH_STORE``, ``NEO4J_URI``, the default."""
    for candidate in (cli_value, os.environ.get("EXPLGRAPH_STORE"), os.environ.get("NEO4J_URI")):
        if candidate:
            return candidate
    return str(default_store_path())


def bolt_settings(uri: str) -> BoltSettings:
    """Credentials for ``uri`` from the Neo4j environment variables."""
    return BoltSettings(
        uri=uri,
        user=os.environ.get("NEO4J_USERNAME") or os.environ.get("NEO4J_USER") or "neo4j",
        password=os.environ.get("NEO4J_PASSWORD", ""),
        database=os.environ.get("NEO4J_DATABASE") or None,
    )


__all__ = [
    "BoltSettings",
    "bolt_settings",
    "default_cache_dir",
    "default_store_path",
    "is_bolt_uri",
    "resolve_store_spec",
]
