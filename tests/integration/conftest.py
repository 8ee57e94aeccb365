"""Store fixtures over every engine this machine can run.

Engines:

- ``ladybug``: the embedded LadybugDB store in ``tmp_path``, always.
- ``arcadedb``: an ArcadeDB server with its Bolt plugin (PyPI ``arcadedb-embedded``), started once
  per session in a child process on free loopback ports and stopped at the end.
- ``neo4j-container``: Neo4j 5 through testcontainers, only when a Docker engine answers.
- ``neo4j-env``: the server named by ``NEO4J_URI`` (credentials from ``NEO4J_USERNAME`` /
  ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``). **Its database is wiped before each test**: point
  it at a disposable server.

An engine that cannot run is skipped with the reason (shown by ``pytest -ra``). Fixtures for
later tests: ``store_spec`` / ``store`` (every engine), ``bolt_store_spec`` / ``bolt_server``
(Bolt engines only), ``tiny_records`` (a small synthetic model factory).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from explgraph.core.errors import StoreUnavailable
from graphstore import GraphRecords, GraphStore
from graphstore.settings import BoltSettings
from graphstore.testing.arcadedb_peer import arcadedb_peer
from graphstore.testing.synthetic import LayerShape, synthetic_records
from tests.helpers.stores import open_store

BOLT_ENGINES = ("arcadedb", "neo4j-container", "neo4j-env")
# Bolt cases carry the ``bolt`` marker, so ``-m "not bolt"`` runs the embedded engine alone.
_BOLT_PARAMS = [pytest.param(name, marks=pytest.mark.bolt) for name in BOLT_ENGINES]
_ALL_PARAMS = [pytest.param("ladybug"), *_BOLT_PARAMS]

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
    fixture = {
        "arcadedb": "arcadedb_server",
        "neo4j-container": "neo4j_container_server",
        "neo4j-env": "neo4j_env_server",
    }[engine]
    server = request.getfixturevalue(fixture)
    if isinstance(server, str):
        pytest.skip(f"{engine}: {server}")
    return server


def _use(server: BoltServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the NEO4J_* variables at ``server`` and empty its database."""
    from graphstore.bolt_engine import BoltStore

    for name in ("NEO4J_USER", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    with BoltStore(server.uri, settings=server.settings) as store:
        store.query("MATCH (n) DETACH DELETE n", write=True)


@pytest.fixture(params=_BOLT_PARAMS)
def bolt_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BoltServer:
    """Each Bolt server in turn, emptied, with the NEO4J_* variables pointing at it."""
    server = server_for(request, request.param)
    _use(server, monkeypatch)
    return server


@pytest.fixture
def bolt_store_spec(bolt_server: BoltServer) -> str:
    """The URI of each Bolt server in turn (environment set, database empty)."""
    return bolt_server.uri


@pytest.fixture(params=_ALL_PARAMS)
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
    with open_store(store_spec) as opened:
        yield opened


TINY_LAYERS = (LayerShape("low", 6, 8.0, 3), LayerShape("high", 3, 16.0, 2))


@pytest.fixture
def tiny_records() -> Callable[..., GraphRecords]:
    """Factory for a small synthetic model: 2 layers x 2 filters, 10 patterns, 4 images.

    Models built with the same ``seed`` share their images.
    """

    def build(
        model_id: str, *, seed: int = 0, channels: int = 2, n_images: int = 4
    ) -> GraphRecords:
        return synthetic_records(
            model_id,
            channels=channels,
            layers=TINY_LAYERS,
            parents_per_pattern=2,
            n_images=n_images,
            fires_per_image=3,
            seed=seed,
        )

    return build
