"""Engine-specific behaviour: connection failures on Bolt, locking on LadybugDB."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from explgraph.core.errors import AuthenticationFailed, StoreError, StoreUnavailable
from graphstore import GraphRecords
from graphstore.bolt_engine import BoltStore
from graphstore.settings import BoltSettings
from graphstore.testing.arcadedb_peer import free_port
from tests.helpers.stores import open_store
from tests.plugins.stores import BoltServer


def test_bolt_bad_credentials(bolt_server: BoltServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", bolt_server.password + "-wrong")

    with pytest.raises(AuthenticationFailed, match="NEO4J_USERNAME and NEO4J_PASSWORD"):
        open_store(bolt_server.uri)


def test_bolt_unreachable_server_names_the_fix() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"  # nothing listens on a port just freed

    with pytest.raises(StoreUnavailable, match="docker compose up -d"):
        BoltStore(uri, settings=BoltSettings(uri, "neo4j", "secret", None))


def test_bolt_unknown_database(bolt_server: BoltServer) -> None:
    settings = BoltSettings(bolt_server.uri, bolt_server.user, bolt_server.password, "nosuchdb")

    with pytest.raises(StoreError, match="NEO4J_DATABASE"):
        BoltStore(bolt_server.uri, settings=settings)


def test_ladybug_second_writer_is_refused_with_a_clear_message(
    tmp_path: Path, tiny_records: Callable[..., GraphRecords]
) -> None:
    spec = str(tmp_path / "store")
    with open_store(spec) as writer:
        writer.write_model(tiny_records("m1"))
        probe = textwrap.dedent(
            f"""
            from explgraph.core.errors import StoreUnavailable
            from tests.helpers.stores import open_store
            try:
                open_store({spec!r})
            except StoreUnavailable as error:
                print("refused:", error)
            with open_store({spec!r}, read_only=True) as reader:
                print("reader sees", [m["model_id"] for m in reader.list_models()])
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert "refused: another process is writing this store" in done.stdout
    assert "reader sees ['m1']" in done.stdout


def test_ladybug_read_only_open_of_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_store(str(tmp_path / "absent"), read_only=True)
    assert not (tmp_path / "absent").exists()


def test_a_process_killed_midway_leaves_no_complete_model(
    store_spec: str, tiny_records: Callable[..., GraphRecords]
) -> None:
    # The writer process dies without any cleanup (os._exit) right before the PARENT edges.
    killer = textwrap.dedent(
        f"""
        import os
        from tests.helpers.stores import open_store, tiny_records

        records = tiny_records("m1")
        store = open_store({store_spec!r})
        insert = store._insert_relationships

        def die_before_parent(rel_type, table):
            if rel_type == "PARENT":
                os._exit(9)
            insert(rel_type, table)

        store._insert_relationships = die_before_parent
        store.write_model(records)
        """
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", killer], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 9, done.stderr

    with open_store(store_spec) as store:
        # the first write of m1 died before its switch: no model, at most a staged copy
        assert store.list_models() == []
        store.write_model(tiny_records("m1"))
        assert store.garbage() == {"staging": {}, "unfinished": {}, "orphans": {}}
        [model] = store.list_models()
    assert model["status"] == "complete"
    assert model["n_parents"] == len(tiny_records("m1").parents)
