"""The fault suite reuses the integration fixtures: every engine (LadybugDB, the ArcadeDB Bolt
peer, Neo4j where one answers), each emptied before a test."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    arcadedb_server,
    bolt_server,
    bolt_store_spec,
    neo4j_container_server,
    neo4j_env_server,
    store,
    store_spec,
)
