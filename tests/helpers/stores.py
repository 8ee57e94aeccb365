"""Open stores in tests as the CLI does: credentials from the ``NEO4J_*`` variables.

The libraries take their settings as arguments (docs/architecture.md); the Bolt fixtures point
the ``NEO4J_*`` variables at the server under test, and these helpers read them like the CLI.
"""

from __future__ import annotations

from typing import Any

from explgraph.cli.environment import store_settings
from graphstore import GraphStore
from graphstore import open_store as _open_store
from graphstore.settings import StoreSettings


def env_settings() -> StoreSettings:
    """The Bolt credentials the CLI would use now."""
    return store_settings()


def open_store(spec: str, **options: Any) -> GraphStore:
    """:func:`graphstore.open_store` with the environment's credentials."""
    options.setdefault("settings", env_settings())
    return _open_store(spec, **options)


__all__ = ["env_settings", "open_store"]
