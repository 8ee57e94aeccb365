"""Read-only means read-only, on every engine: refused before execution, nothing changed or read.

Also: a read-only open of an embedded store whose checkpoint recovery is pending recovers by
itself (the state a killed writer, or a ``CHECKPOINT`` run read-only by older versions, left).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from explgraph.core.errors import QuerySyntaxError, ReadOnlyViolation, StoreUnavailable
from graphstore import GraphRecords, GraphStore
from tests.fuzz.corpus import fill, regression_cases
from tests.helpers.cli import CliResult, run_cli
from tests.helpers.store_observer import (
    FileWatch,
    bolt_statements,
    bolt_view,
    canary,
    observe,
)
from tests.helpers.stores import open_store
from tests.plugins.stores import BoltServer

Build = Callable[..., GraphRecords]


def _file_statements(target: Path) -> list[str]:
    return [
        f"COPY (MATCH (m:Model) RETURN m.model_id) TO '{target / 'copy.csv'}'",
        f"EXPORT DATABASE '{target / 'export'}'",
        f"IMPORT DATABASE '{target / 'export'}'",
        "LOAD FROM '/etc/passwd' (file_format='csv', header=false, delim=':') RETURN *",
        "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
        "CHECKPOINT",
        f"ATTACH '{target / 'other.lbug'}' AS other (dbtype lbug)",
        "CALL apoc.export.csv.all('/tmp/x.csv', {})",
        "CREATE INDEX pattern_extra IF NOT EXISTS FOR (n:Pattern) ON (n.sigma)",
        "CREATE CONSTRAINT extra_key IF NOT EXISTS FOR (n:Extra) REQUIRE n.k IS UNIQUE",
        "DROP CONSTRAINT pattern_key",
        "CREATE (n:NewLabel {k: 1})",
    ]


def _snapshot(store: GraphStore) -> list[dict]:
    return store.query("MATCH (n) RETURN n.model_id AS model, count(n) AS c ORDER BY model")


@pytest.mark.parametrize("read_only_handle", [True, False])
def test_nothing_writes_or_reads_files_without_write(
    store_spec: str, tiny_records: Build, tmp_path: Path, read_only_handle: bool
) -> None:
    with open_store(store_spec) as writer:
        writer.write_model(tiny_records("m1"))
        before = _snapshot(writer)
    files_before = sorted(p.name for p in tmp_path.rglob("*"))
    with open_store(store_spec, read_only=read_only_handle) as store:
        for statement in _file_statements(tmp_path):
            with pytest.raises(ReadOnlyViolation, match="--write"):
                store.query(statement)
        assert _snapshot(store) == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == files_before
    with open_store(store_spec, read_only=True) as reader:  # and the store still opens read-only
        assert [m["status"] for m in reader.list_models()] == ["complete"]


def test_unbound_parameter_is_an_error(store: GraphStore) -> None:
    with pytest.raises(QuerySyntaxError, match=r"\$nope"):
        store.query("MATCH (m:Model) WHERE m.model_id = $nope RETURN m")


def test_strings_that_look_like_clauses_run(store: GraphStore) -> None:
    assert store.query("RETURN 'COPY' AS w, 'LOAD CSV' AS v") == [{"w": "COPY", "v": "LOAD CSV"}]


def test_read_only_open_recovers_a_pending_checkpoint(tmp_path: Path, tiny_records: Build) -> None:
    import ladybug

    spec = str(tmp_path / "store")
    with open_store(spec) as writer:
        writer.write_model(tiny_records("m1"))
    # What `explgraph query "CHECKPOINT"` did before statements were classified: a CHECKPOINT on
    # a read-only handle that leaves recovery pending for every later read-only open.
    database = ladybug.Database(str(Path(spec) / "graph.lbug"), read_only=True)
    connection = ladybug.Connection(database)
    with contextlib.suppress(RuntimeError):  # it fails, but only after changing the files
        connection.execute("CHECKPOINT")
    connection.close()
    database.close()
    with pytest.raises(RuntimeError, match="recovery is pending"):
        ladybug.Database(str(Path(spec) / "graph.lbug"), read_only=True)

    with open_store(spec, read_only=True) as reader:
        assert [m["model_id"] for m in reader.list_models()] == ["m1"]


def test_pending_recovery_while_a_writer_holds_the_lock_says_so(
    tmp_path: Path, tiny_records: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that holds the lock recovers the store itself; until then: one line, no --write."""
    import ladybug

    spec = str(tmp_path / "store")
    with open_store(spec) as writer:
        writer.write_model(tiny_records("m1"))
    real = ladybug.Database

    def locked(path: str, read_only: bool = False, **kwargs: object) -> object:
        if read_only:
            raise RuntimeError(
                "Runtime exception: Cannot open database in read-only mode while checkpoint "
                "recovery is pending. ... reopen in read-write mode to complete recovery"
            )
        raise RuntimeError("IO exception: Could not set lock on file : " + path)

    monkeypatch.setattr(ladybug, "Database", locked)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(spec, read_only=True)
    message = str(caught.value)
    assert "--write" not in message and "\n" not in message
    assert "another process is writing" in message
    monkeypatch.setattr(ladybug, "Database", real)
    with open_store(spec, read_only=True) as reader:
        assert [m["model_id"] for m in reader.list_models()] == ["m1"]


def test_read_only_open_upgrades_a_store_of_an_older_version(
    tmp_path: Path, tiny_records: Build
) -> None:
    """A store written before the precomputed properties existed still reads (and gains them)."""
    import ladybug

    from graphstore.schema import ADDED_PROPERTIES

    spec = str(tmp_path / "store")
    with open_store(spec) as writer:
        writer.write_model(tiny_records("m1"))
    database = ladybug.Database(str(Path(spec) / "graph.lbug"))
    connection = ladybug.Connection(database)
    for label, names in ADDED_PROPERTIES.items():
        for name in names:
            connection.execute(f"ALTER TABLE {label} DROP {name}")
    connection.close()
    database.close()

    with open_store(spec, read_only=True) as reader:
        assert reader.describe_model("m1")["n_patterns"] == len(tiny_records("m1").patterns)
        columns = {row["name"] for row in reader.query("CALL table_info('Model') RETURN *")}
    assert set(ADDED_PROPERTIES["Model"]) <= columns


# Issue 22: the read-only policy as an allow-list, and the Bolt schema check behind it ---------


def _refused_in_one_line(result: CliResult) -> bool:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.exit_code == 1 and len(lines) == 1 and "--write" in lines[0]


def test_every_bypass_found_so_far_is_refused_by_explgraph_query(
    store_spec: str, tiny_records: Build, tmp_path: Path
) -> None:
    """Issue 22's probe and every case found since, through ``explgraph query`` on each engine:
    refused in one line, the store unchanged, no file written, the canary's secret never shown."""
    with open_store(store_spec) as writer:
        writer.write_model(tiny_records("m1"))
    secret_file, secret = canary(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = observe(store_spec)
    watch = FileWatch(secret_file)
    let_through = []
    for template, origin in regression_cases():
        statement = fill(template, str(secret_file), str(out))
        result = run_cli("query", statement, store=store_spec, expect=None)
        assert secret not in result.output, (origin, statement)
        assert not watch.touched(), (origin, statement)  # not even read without showing it
        if not _refused_in_one_line(result):
            let_through.append((origin, statement, result.exit_code, result.output[-200:]))
    assert not let_through, let_through
    assert observe(store_spec) == before
    assert list(out.iterdir()) == []
    if "://" not in store_spec and watch.available:  # the watch sees LadybugDB read the file
        run_cli(
            "query",
            f"LOAD FROM '{secret_file}' (header=false) RETURN *",
            "--write",
            store=store_spec,
        )
        assert watch.touched()
    watch.close()


def test_a_bolt_read_runs_in_a_read_transaction(bolt_store_spec: str, tiny_records: Build) -> None:
    """``explgraph query`` without --write sends nothing but READ transactions; with --write
    the statement goes in a WRITE one (the recorder sees the difference)."""
    with open_store(bolt_store_spec) as writer:
        writer.write_model(tiny_records("m1"))
    statement = "MATCH (m:Model) RETURN m.model_id AS id"
    with bolt_statements() as sent:
        result = run_cli("query", statement, store=bolt_store_spec)
    assert "m1" in result.stdout
    assert ("READ", statement) in sent, sent
    assert {mode for mode, _ in sent} == {"READ"}, sent
    with bolt_statements() as sent:
        run_cli("query", statement, "--write", store=bolt_store_spec)
    assert ("WRITE", statement) in sent, sent


def _label_count(spec: str, label: str) -> int:
    with open_store(spec, read_only=True) as store:
        return int(store.query(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"])


@pytest.mark.parametrize("kind", ["label", "index"])
def test_a_schema_change_behind_the_policy_is_reported_truthfully(
    bolt_store_spec: str, tiny_records: Build, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Should a statement ever get past the policy, the check after it says what stayed on the
    server (ArcadeDB's schema outlives a rollback): never "rolled back" for what was not."""
    import graphstore.bolt_engine as bolt_engine

    with open_store(bolt_store_spec) as writer:
        writer.write_model(tiny_records("m1"))
    name = f"Evil{secrets.token_hex(4)}"
    statement = {
        "label": f"MATCH (m:Model) WITH * CREATE (e:{name} {{x: 1}}) RETURN e.x",
        "index": f"//c\rCREATE INDEX FOR (n:Model) ON (n.{name})",
    }[kind]
    monkeypatch.setattr(bolt_engine, "check_statement", lambda *args, **kwargs: None)
    with (
        open_store(bolt_store_spec, read_only=True) as store,
        pytest.raises(ReadOnlyViolation) as caught,
    ):
        store.query(statement)
    message = str(caught.value)
    view = bolt_view(bolt_store_spec)
    stayed = name in json.dumps(view["labels" if kind == "label" else "indexes"])
    assert "\n" not in message and "--write" in message
    if stayed:  # ArcadeDB: the schema change outlived the rollback, and the message says so
        assert f"{kind} " in message and "was created" in message and "could not undo" in message
        assert "rolled back" not in message
    else:  # Neo4j refuses the change in the READ transaction
        assert "changed its schema" not in message
    if kind == "label":
        assert _label_count(bolt_store_spec, name) == 0  # the node itself was rolled back


def test_a_data_change_behind_the_policy_is_rolled_back_and_says_so(
    bolt_store_spec: str, tiny_records: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphstore.bolt_engine as bolt_engine

    with open_store(bolt_store_spec) as writer:
        writer.write_model(tiny_records("m1"))
        architecture = writer.query("MATCH (m:Model) RETURN m.architecture AS a")[0]["a"]
    monkeypatch.setattr(bolt_engine, "check_statement", lambda *args, **kwargs: None)
    with open_store(bolt_store_spec, read_only=True) as store:
        with pytest.raises(ReadOnlyViolation, match="--write") as caught:
            store.query("MATCH (m:Model) SET m.architecture = 'evil' RETURN m.architecture")
        assert "changed its schema" not in str(caught.value)
        assert store.query("MATCH (m:Model) RETURN m.architecture AS a")[0]["a"] == architecture


def test_another_clients_schema_change_does_not_fail_a_read(
    bolt_server: BoltServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer that creates a label while a read runs is not the read's doing: logged only."""
    import neo4j

    from graphstore.readonly import SchemaWatch, watched_read

    name = f"OtherClient{secrets.token_hex(4)}"
    auth = (bolt_server.user, bolt_server.password)
    with neo4j.GraphDatabase.driver(bolt_server.uri, auth=auth) as driver:

        def read(work: Callable[[Any], Any]) -> Any:
            with driver.session(database=bolt_server.database) as session:
                return session.execute_read(work)

        def run() -> tuple[list[dict[str, Any]], bool]:
            driver.execute_query(f"CREATE (:{name})", database_=bolt_server.database)
            return [{"ok": 1}], False

        with caplog.at_level(logging.WARNING, logger="graphstore.readonly"):
            rows = watched_read(SchemaWatch(read), "MATCH (m:Model) RETURN m", run)
        assert rows == [{"ok": 1}]
        if name in json.dumps(bolt_view(bolt_server.uri)["labels"]):  # listed at once
            assert name in caplog.text


def test_a_limit_beyond_the_engines_range_is_named(
    store_spec: str, tiny_records: Build, request: pytest.FixtureRequest
) -> None:
    """ArcadeDB takes SKIP / LIMIT up to 2**31 - 1 and called 2**32 "negative"."""
    with open_store(store_spec) as writer:
        writer.write_model(tiny_records("m1"))
    engine = request.node.callspec.params["store_spec"]
    result = run_cli(
        "query",
        "MATCH (m:Model) RETURN m.model_id AS id LIMIT 4294967296",
        store=store_spec,
        expect=None,
    )
    if engine == "arcadedb":
        assert "LIMIT 4294967296" in result.error_line and "2147483647" in result.error_line
        assert "negative" not in result.error_line
    else:  # LadybugDB and Neo4j take 64-bit limits
        assert result.exit_code == 0, result.output
        assert "m1" in result.stdout
