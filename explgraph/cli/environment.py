"""What the command line takes from the environment: the store, its credentials, default folders.

The only module below which nothing reads the environment (the web server's start-up goes
through ``explgraph serve``). Store selection, in order: ``--store``, ``EXPLGRAPH_STORE``,
``NEO4J_URI``, then the default embedded store folder. Neo4j credentials come only from the
environment (``NEO4J_USERNAME`` or its alias ``NEO4J_USER``, ``NEO4J_PASSWORD``,
``NEO4J_DATABASE``), never the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from explgraph.core.errors import StoreError
from graphstore.address import parse_store_address
from graphstore.settings import StoreSettings

APP_NAME = "explgraph"


def default_store_path() -> Path:
    """The embedded store used when nothing else is named: the user data folder's ``store``
    (``$XDG_DATA_HOME/explgraph/store``, by default ``~/.local/share/explgraph/store``)."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "store"


def default_cache_dir() -> Path:
    """Where feature caches and mining checkpoints live: ``$EXPLGRAPH_CACHE``, else the user
    cache folder (``$XDG_CACHE_HOME/explgraph``, by default ``~/.cache/explgraph``)."""
    explicit = os.environ.get("EXPLGRAPH_CACHE")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_cache_dir(APP_NAME))


def model_search_path() -> list[Path]:
    """Folders where a moved CNN checkpoint is looked for (by file name, verified by its
    SHA-256): ``$EXPLGRAPH_MODEL_PATH``, separated like ``PATH``."""
    text = os.environ.get("EXPLGRAPH_MODEL_PATH", "")
    return [Path(part).expanduser() for part in text.split(os.pathsep) if part.strip()]


@dataclass(frozen=True)
class StoreChoice:
    """The store an invocation uses and where its address came from."""

    spec: str
    source: str  # "--store", "EXPLGRAPH_STORE", "NEO4J_URI" or "default"

    def check(self) -> None:
        """Refuse a ``NEO4J_URI`` that is not a Bolt URI (a folder there is a mistake).

        Raises:
            StoreError: one line naming the variable and what to set it to.
        """
        if self.source == "NEO4J_URI" and parse_store_address(self.spec).kind != "bolt":
            raise StoreError(
                f"NEO4J_URI={self.spec.strip()!r} is not a Bolt URI: set it to "
                "bolt://host:7687 (or neo4j://…), or unset it and name an embedded store "
                "folder with --store"
            )


def choose_store(cli_value: str | None) -> StoreChoice:
    """Pick the store: the CLI value, then ``EXPLGRAPH_STORE``, ``NEO4J_URI``, the default."""
    for source, candidate in (
        ("--store", cli_value),
        ("EXPLGRAPH_STORE", os.environ.get("EXPLGRAPH_STORE")),
        ("NEO4J_URI", os.environ.get("NEO4J_URI")),
    ):
        if candidate:
            return StoreChoice(candidate, source)
    return StoreChoice(str(default_store_path()), "default")


def resolve_store_spec(cli_value: str | None) -> str:
    """The store address: the CLI value, then ``EXPLGRAPH_STORE``, ``NEO4J_URI``, the default."""
    return choose_store(cli_value).spec


def store_settings() -> StoreSettings:
    """Bolt credentials and database from the Neo4j environment variables."""
    return StoreSettings(
        user=os.environ.get("NEO4J_USERNAME") or os.environ.get("NEO4J_USER") or "neo4j",
        password=os.environ.get("NEO4J_PASSWORD", ""),
        database=os.environ.get("NEO4J_DATABASE") or None,
    )


__all__ = [
    "StoreChoice",
    "choose_store",
    "default_cache_dir",
    "default_store_path",
    "model_search_path",
    "resolve_store_spec",
    "store_settings",
]
