"""The read-only statement classifier, store address validation and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from explgraph.core.errors import InputError, QuerySyntaxError, ReadOnlyViolation, StoreError
from graphstore.address import folder_state, parse_store_address
from graphstore.settings import BoltSettings
from graphstore.statements import check_statement, classify, tokenize

REFUSED = {
    "COPY (MATCH (n) RETURN n) TO '/tmp/x.csv'": "COPY",
    "COPY Pattern FROM '/tmp/x.csv'": "COPY",
    "EXPORT DATABASE '/tmp/dump'": "EXPORT",
    "IMPORT DATABASE '/tmp/dump'": "IMPORT",
    "LOAD FROM '/etc/passwd' (file_format='csv') RETURN *": "LOAD",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line": "LOAD",
    "LOAD EXTENSION json": "LOAD",
    "CHECKPOINT": "CHECKPOINT",
    "checkpoint;": "CHECKPOINT",
    "ATTACH '/tmp/other.lbug' AS other (dbtype lbug)": "ATTACH",
    "DETACH other": "DETACH",
    "INSTALL json": "INSTALL",
    "CREATE INDEX x IF NOT EXISTS FOR (n:Pattern) ON (n.layer)": "CREATE",
    "DROP CONSTRAINT pattern_key": "DROP",
    "CREATE CONSTRAINT c FOR (n:X) REQUIRE n.k IS UNIQUE": "CREATE",
    "ALTER TABLE Pattern ADD extra STRING": "ALTER",
    "MATCH (n) DETACH DELETE n": "DETACH DELETE",
    "MATCH (n) /* harmless? */ SET n.x = 1": "SET",
    "MERGE (n:Image {image_id: 'x'})": "MERGE",
    "MATCH (n) REMOVE n.x": "REMOVE",
    "UNWIND [1] AS x FOREACH (y IN [x] | CREATE (:Image))": "FOREACH",
    "CALL apoc.export.csv.all('/tmp/x.csv', {})": "CALL apoc.export.csv.all",
    "CALL db.createLabel('X')": "CALL db.createlabel",
    "CALL threads = 4": "CALL threads",
    "BEGIN TRANSACTION": "BEGIN",
    "USE other MATCH (n) RETURN n": "USE",
}

ALLOWED = (
    "MATCH (n:Pattern) RETURN n.pattern_id AS id ORDER BY id",
    "RETURN 'COPY' AS word",
    'RETURN "LOAD CSV FROM x" AS s',
    "RETURN 1 // CHECKPOINT",
    "RETURN 1 /* EXPORT DATABASE '/x' */",
    "MATCH (n) WHERE n.set = 1 RETURN n.delete AS `CREATE`",
    "MATCH (load:Pattern) RETURN load.layer AS copy",
    "RETURN {set: 1, create: 2} AS m",
    "CALL show_tables() RETURN *",
    "CALL table_info('Pattern') RETURN *",
    "CALL db.labels()",
    "MATCH (n) CALL { WITH n RETURN n.x AS x } RETURN x",
    "MATCH (p:Pattern) WHERE p.layer STARTS WITH 'conv' RETURN p",
    "RETURN 'it\\'s CREATE' AS s",
    "MATCH (use:Pattern) RETURN use.layer AS use",
)


@pytest.mark.parametrize("statement", list(REFUSED))
def test_writing_statements_are_refused_without_write(statement: str) -> None:
    assert REFUSED[statement] in classify(statement).refused
    with pytest.raises(ReadOnlyViolation, match="--write"):
        check_statement(statement, {}, write=False)
    check_statement(statement, {}, write=True)  # allowed with write


@pytest.mark.parametrize("statement", ALLOWED)
def test_reading_statements_pass(statement: str) -> None:
    assert classify(statement).read_only, classify(statement).refused
    check_statement(statement, {}, write=False)


def test_beyond_the_graph_names_files_databases_and_procedures() -> None:
    """What the web console refuses itself; graph writes are left to read-only mode."""
    assert classify("MATCH (n) SET n.x = 1").beyond_the_graph == ()
    assert classify("MATCH (n) DETACH DELETE n").beyond_the_graph == ()
    assert classify("LOAD CSV FROM 'file:///x' AS r RETURN r").beyond_the_graph == ("LOAD",)
    assert classify("DETACH other").beyond_the_graph == ("DETACH",)  # a database, not nodes
    assert classify("USE other MATCH (n) RETURN n").beyond_the_graph == ("USE",)
    assert classify("CALL apoc.export.csv.all('x', {})").beyond_the_graph == (
        "CALL apoc.export.csv.all",
    )
    assert classify("MATCH (n) RETURN n.load AS copy").beyond_the_graph == ()


def test_tokens_skip_strings_and_comments() -> None:
    words = [
        t.text for t in tokenize("RETURN 'a CREATE' /* SET */ AS x // DELETE") if t.kind == "word"
    ]
    assert words == ["RETURN", "AS", "x"]


def test_unbound_parameters_are_named() -> None:
    assert classify("MATCH (n) WHERE n.a = $a AND n.b = $`b c` RETURN $a").parameters == {
        "a",
        "b c",
    }
    with pytest.raises(QuerySyntaxError, match=r"\$limit"):
        check_statement("MATCH (n) RETURN n LIMIT $limit", {}, write=False)
    check_statement("RETURN '$notaparam' AS s", {}, write=False)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, [1, 2**70], {"k": 10**30}])
def test_integer_parameters_must_fit_64_bits(value: object) -> None:
    with pytest.raises(InputError, match="64-bit"):
        check_statement("RETURN $x AS x", {"x": value}, write=False)
    check_statement("RETURN $x AS x", {"x": 2**63 - 1}, write=False)


@pytest.mark.parametrize(
    "spec",
    ["http://example.org", "https://x:7474", "garbage:7687", "file:///tmp/x", "bolt://", ""],
)
def test_unsupported_store_addresses_are_refused(spec: str) -> None:
    with pytest.raises(StoreError):
        parse_store_address(spec)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("bolt://db.example:7687", "bolt"), ("neo4j+s://db.example", "bolt"), ("/tmp/s", "folder")],
)
def test_open_store_hands_each_address_to_its_engine(
    spec: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry has an engine for every kind of address; open_store passes its options."""
    from graphstore import registry
    from graphstore.settings import StoreSettings

    assert set(registry.ENGINES) == {"bolt", "folder"}
    calls: list[tuple[str, str, bool, bool, object]] = []

    def opener(address, read_only, create, settings):  # type: ignore[no-untyped-def]
        calls.append((address.kind, address.uri or str(address.path), read_only, create, settings))
        return "opened"

    monkeypatch.setitem(registry.ENGINES, kind, opener)
    settings = StoreSettings(user="u", password="p")
    assert registry.open_store(spec, read_only=True, create=False, settings=settings) == "opened"
    assert calls == [(kind, spec, True, False, settings)]


def test_neo4j_uri_must_be_a_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    from explgraph.cli.environment import choose_store

    monkeypatch.delenv("EXPLGRAPH_STORE", raising=False)
    monkeypatch.setenv("NEO4J_URI", "garbage")
    with pytest.raises(StoreError, match="NEO4J_URI"):
        choose_store(None).check()


def test_credentials_in_a_uri_are_refused_without_echo() -> None:
    with pytest.raises(StoreError) as caught:
        parse_store_address("bolt://alice:s3cr3t-pw@db.example:7687")
    assert "s3cr3t-pw" not in str(caught.value)
    assert "NEO4J_PASSWORD" in str(caught.value)


@pytest.mark.parametrize(
    "spec",
    ["bolt://localhost:7687", "neo4j+s://db.example", "BOLT+SSC://h:1", "/tmp/store", "C:/x"],
)
def test_good_addresses(spec: str) -> None:
    assert parse_store_address(spec).kind in ("bolt", "folder")


def test_folder_states(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert folder_state(tmp_path / "missing") == "missing"
    assert folder_state(tmp_path) == "empty"
    (tmp_path / "notes.txt").write_text("x")
    assert folder_state(tmp_path) == "foreign"
    (tmp_path / "graph.lbug").write_bytes(b"")
    assert folder_state(tmp_path) == "store"


def test_passwords_stay_out_of_reprs() -> None:
    from graphstore.testing.arcadedb_peer import PeerServer

    assert "hunter2" not in repr(BoltSettings("bolt://h:1", "neo4j", "hunter2", None))
    assert "hunter2" not in repr(PeerServer("bolt://h:1", "root", "hunter2", "db"))


def test_peer_password_is_not_on_argv() -> None:
    import inspect

    from graphstore.testing import arcadedb_peer

    source = inspect.getsource(arcadedb_peer.arcadedb_peer)
    command = source[source.index("command = [") : source.index("]", source.index("command = ["))]
    assert "password" not in command
