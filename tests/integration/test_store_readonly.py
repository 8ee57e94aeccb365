"""Read-only means read-only, on every engine: refused before execution, nothing changed or read.

Also: a read-only open of an embedded store whose checkpoint recovery is pending recovers by
itself (the state a killed writer, or a ``CHECKPOINT`` run read-only by older versions, left).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from explgraph.core.errors import QuerySyntaxError, ReadOnlyViolation, StoreUnavailable
from graphstore import GraphRecords, GraphStore
from tests.helpers.stores import open_store

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
