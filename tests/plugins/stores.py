"""The store fixtures, one pytest plugin for the whole suite (registered in ``tests/conftest.py``).

Store behaviour (writes, reads, queries, canned queries, the read-only policy, crashes, replace,
result shapes) is tested on every engine this machine can run; tests of the algorithms that
read a stored graph (And-Or graphs, stability, comparison, explanation, diagnosis) use the
embedded store of the ``mined_toy`` fixture alone.

Engines:

- ``ladybug``: the embedded LadybugDB store in ``tmp_path``, always.
- ``arcadedb``: an ArcadeDB server with its Bolt plugin (PyPI ``arcadedb-embedded``), started once
  per session in a child process on free loopback ports and stopped at the end.
- ``neo4j-container``: Neo4j 5 through testcontainers, only when a Docker engine answers.
- ``neo4j-env``: the server named by ``NEO4J_URI`` (credentials from ``NEO4J_USERNAME`` /
  ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``). **Its database is wiped before each test**: point
  it at a disposable server.

An engine that cannot run is skipped with the reason (shown by ``pytest -ra``). Fixtures:
``store_spec`` / ``store`` (every engine), ``bolt_store_spec`` / ``bolt_server`` (Bolt engines
only), ``tiny_records`` (a small synthetic model factory). A module-scoped fixture over every
engine parametrises itself with :data:`ENGINE_PARAMS` and gets a server with :func:`server_for`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers.ci import missing_tool

# The plugin loads with every test run: the store libraries are imported when a fixture runs.
if TYPE_CHECKING:
    from graphstore import GraphRecords, GraphStore
    from graphstore.settings import BoltSettings

BOLT_ENGINES = ("arcadedb", "neo4j-container", "neo4j-env")
# Bolt cases carry the ``bolt`` marker, so ``-m "not bolt"`` runs the embedded engine alone.
BOLT_PARAMS = [pytest.param(name, marks=pytest.mark.bolt) for name in BOLT_ENGINES]
ENGINE_PARAMS = [pytest.param("ladybug"), *BOLT_PARAMS]

_NEO4J_IMAGE = "neo4j:5.26.2"


@dataclass(frozen=True)
class BoltServer:
    """A reachable Bolt server and the credentials for it."""

    name: str
    uri: str
    user: str
    password: str = field(repr=False)  # never in a test log
    database: str | None

    @property
    def settings(self) -> BoltSettings:
        """The settings ``open_store`` would read from the environment."""
        from graphstore.settings import BoltSettings

        return BoltSettings(self.uri, self.user, self.password, self.database)

    def env(self) -> dict[str, str]:
        """The NEO4J_* variables that point explgraph at this server."""
        values = {"NEO4J_USERNAME": self.user, "NEO4J_PASSWORD": self.password}
        if self.database:
            values["NEO4J_DATABASE"] = self.database
        return values


@pytest.fixture(scope="session")
def arcadedb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltServer | str]:
    """The ArcadeDB Bolt peer, started once per session, or the reason it could not start."""
    from explgraph.core.errors import StoreUnavailable
    from graphstore.testing.arcadedb_peer import arcadedb_peer

    try:
        import arcadedb_embedded  # noqa: F401
    except ImportError as error:
        yield f"arcadedb-embedded is not installed ({error}); pip install arcadedb-embedded"
        return
    try:
        with arcadedb_peer(tmp_path_factory.mktemp("arcadedb")) as peer:
            yield BoltServer("arcadedb", peer.uri, peer.user, peer.password, peer.database)
    except StoreUnavailable as error:
        yield str(error)


@pytest.fixture(scope="session")
def neo4j_container_server() -> Iterator[BoltServer | str]:
    """Neo4j 5 in a testcontainer, or the reason there is none."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as error:  # any failure means: no Docker engine to talk to
        yield f"no Docker engine answers ({type(error).__name__}), so no Neo4j container"
        return
    from testcontainers.neo4j import Neo4jContainer

    with Neo4jContainer(_NEO4J_IMAGE) as container:
        yield BoltServer(
            "neo4j-container",
            container.get_connection_url(),
            "neo4j",
            container.password,
            None,
        )


@pytest.fixture(scope="session")
def neo4j_env_server() -> BoltServer | str:
    """The server named by NEO4J_URI, or the reason there is none."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        return "NEO4J_URI is not set (set it to a disposable Neo4j server to test against it)"
    return BoltServer(
        "neo4j-env",
        uri,
        os.environ.get("NEO4J_USERNAME") or os.environ.get("NEO4J_USER") or "neo4j",
        os.environ.get("NEO4J_PASSWORD", ""),
        os.environ.get("NEO4J_DATABASE") or None,
    )


def server_for(request: pytest.FixtureRequest, engine: str) -> BoltServer:
    """The running server of Bolt ``engine``; skips the test with the reason when there is none."""
    fixture = {
        "arcadedb": "arcadedb_server",
        "neo4j-container": "neo4j_container_server",
        "neo4j-env": "neo4j_env_server",
    }[engine]
    server = request.getfixturevalue(fixture)
    if isinstance(server, str):
        if engine == "arcadedb":  # a test extra, so CI always has the peer
            missing_tool(f"{engine}: {server}")
        pytest.skip(f"{engine}: {server}")
    return server


def empty_bolt_store(server: BoltServer) -> GraphStore:
    """An open store on ``server`` with every node and relationship deleted."""
    from graphstore.bolt_engine import BoltStore

    store = BoltStore(server.uri, settings=server.settings)
    store.query("MATCH (n) DETACH DELETE n", write=True)
    return store


def _use(server: BoltServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the NEO4J_* variables at ``server`` and empty its database."""
    for name in ("NEO4J_USER", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    empty_bolt_store(server).close()


@pytest.fixture(params=BOLT_PARAMS)
def bolt_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BoltServer:
    """Each Bolt server in turn, emptied, with the NEO4J_* variables pointing at it."""
    server = server_for(request, request.param)
    _use(server, monkeypatch)
    return server


@pytest.fixture
def bolt_store_spec(bolt_server: BoltServer) -> str:
    """The URI of each Bolt server in turn (environment set, database empty)."""
    return bolt_server.uri


@pytest.fixture(params=ENGINE_PARAMS)
def store_spec(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Each engine's store spec in turn: a fresh folder, or an emptied Bolt server."""
    if request.param == "ladybug":
        return str(tmp_path / "store")
    server = server_for(request, request.param)
    _use(server, monkeypatch)
    return server.uri


@pytest.fixture
def store(store_spec: str) -> Iterator[GraphStore]:
    """A read-write store on each engine in turn, closed after the test."""
    from tests.helpers.stores import open_store

    with open_store(store_spec) as opened:
        yield opened


@pytest.fixture(name="tiny_records")
def tiny_records_fixture() -> Callable[..., GraphRecords]:
    """Factory for a small synthetic model (:func:`tests.helpers.stores.tiny_records`)."""
    from tests.helpers.stores import tiny_records

    return tiny_records
