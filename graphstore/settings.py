"""How to open a store beyond its address: given by the caller, never read from the environment.

The CLI and the web server's start-up fill :class:`StoreSettings` from ``NEO4J_USERNAME`` /
``NEO4J_USER``, ``NEO4J_PASSWORD`` and ``NEO4J_DATABASE``; a library caller builds it itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoreSettings:
    """Credentials and database for a Bolt server (the embedded engine needs none)."""

    user: str = "neo4j"
    password: str = field(default="", repr=False)  # never in a repr, log or message
    database: str | None = None


@dataclass(frozen=True)
class BoltSettings:
    """Where and how to reach a Bolt server."""

    uri: str
    user: str
    password: str = field(repr=False)  # never in a repr, log or message
    database: str | None = None

    @classmethod
    def for_uri(cls, uri: str, settings: StoreSettings | None = None) -> BoltSettings:
        """The Bolt settings of ``uri`` with the credentials of ``settings`` (defaults if none)."""
        given = settings or StoreSettings()
        return cls(uri=uri, user=given.user, password=given.password, database=given.database)


__all__ = ["BoltSettings", "StoreSettings"]
