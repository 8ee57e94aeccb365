"""The read-only statement classifier, store address validation and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from explgraph.core.errors import InputError, QuerySyntaxError, ReadOnlyViolation, StoreError
from graphstore.address import folder_state, parse_store_address
from graphstore.readonly import SchemaChange, changes_between
from graphstore.settings import BoltSettings
from graphstore.statements import INT32_MAX, check_statement, classify, tokenize
from tests.fuzz.corpus import fill, regression_cases

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


# The read-only grammar on both engines: clauses, patterns and expressions that must keep running.
READ_GRAMMAR = (
    "MATCH (m:Model) WITH * RETURN count(*) AS c",
    "MATCH (m:Model) WITH DISTINCT * WHERE m.model_id = 'a' RETURN m.model_id",
    "OPTIONAL MATCH (m:Model)-[:HAS_LAYER]->(l:Layer) RETURN m, l",
    "MATCH p = (a)-[*1..2]->(b) RETURN p",
    "MATCH (a)-[e:PARENT* SHORTEST 1..3]->(b) RETURN e",
    "MATCH (a)-[e:PARENT* TRAIL 1..3]->(b) RETURN e",
    "MATCH ((a)-->(b))+ RETURN count(*) AS c",
    "MATCH ((a)-->(b)){1,3} RETURN count(*) AS c",
    "MATCH SHORTEST 2 GROUPS (a)-->+(b) RETURN a",
    "MATCH (n) RETURN n {.model_id, .*} AS m",
    "RETURN [x IN [1, 2] WHERE x > 1 | x * 2] AS l",
    "MATCH (n) RETURN [(n)-->(m) WHERE m.x > 0 | m.x] AS xs",
    "MATCH (n) WHERE EXISTS { MATCH (n)-->() } RETURN n",
    "MATCH (n) WHERE EXISTS { (n)-->() } RETURN n",
    "MATCH (n) RETURN COUNT { (n)-->() } AS c",
    "MATCH (n) CALL (n) { RETURN 1 AS one } RETURN one",
    "RETURN CASE WHEN 1 > 0 THEN 'a' ELSE 'b' END AS x",
    "RETURN CASE 1 WHEN 1 THEN 'a' END AS x",
    "RETURN 1 AS x;",
    "EXPLAIN MATCH (n) RETURN n",
    "PROFILE MATCH (n) RETURN n",
    "SHOW INDEXES YIELD name RETURN name",
    "SHOW RANGE INDEXES",
    "SHOW CONSTRAINTS",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.labels",
    "CALL db.relationshipTypes() YIELD relationshipType WHERE relationshipType STARTS WITH 'H' "
    "RETURN relationshipType",
    "RETURN 'a\\' CREATE (x) //' AS s",
    "RETURN 1 AS `a``b`",
    "RETURN 1\u00a0AS x",
    "RETURN 1 AS x //c\r\nUNION RETURN 2 AS x",
    "RETURN list_transform([1, 2], x -> x + 1) AS l",
    "RETURN CAST(1 AS STRING) AS s",
    "MATCH (n) WHERE n.x STARTS WITH 'a' AND n.y ENDS WITH 'b' OR n.z CONTAINS 'c' RETURN n",
    "MATCH (n) WHERE n.x IS NOT NULL RETURN n ORDER BY n.x DESC SKIP 1 LIMIT 2",
    "RETURN 1 AS x UNION ALL RETURN 2 AS x",
    "MATCH (n) RETURN count(DISTINCT n) AS c",
    "RETURN 0x1F AS h, .5 AS f, 1e3 AS g",
    "MATCH (n:A|B) WHERE n:C AND NOT n:D RETURN n",
    "UNWIND $rows AS r MATCH (n {k: r.k}) RETURN n",
    "MATCH (n) RETURN reduce(acc = 0, x IN [1, 2] | acc + x) AS s",
    "MATCH (n) RETURN all(x IN [1] WHERE x > 0) AS a, any(x IN [1] WHERE x > 0) AS b",
    "MATCH (n) WHERE (n)-->() RETURN n",
    "MATCH (n) WHERE n.name =~ 'a.*' RETURN n.x ^ 2 AS w, n.x % 2 AS v, -n.y AS z",
    "MATCH (f:Filter) RETURN f.layer AS layer, f.idx AS filter ORDER BY layer, filter",
    "MATCH (m)-[e:FLAGGED]->(p:Pattern) HINT (m JOIN e) JOIN p RETURN p",
    "MATCH (n) RETURN n.x AS trail, n.y AS `load`",
)


@pytest.mark.parametrize("statement", READ_GRAMMAR)
def test_the_read_grammar_runs_without_write(statement: str) -> None:
    found = classify(statement)
    assert found.read_only, (found.refused, found.problems)


def test_every_canned_query_is_read_only_on_both_engines() -> None:
    from queries.canned import canned_texts

    for engine in ("ladybug", "bolt"):
        for name, text in canned_texts(engine):
            found = classify(text)
            assert found.read_only, (engine, name, found.refused, found.problems)


@pytest.mark.parametrize(("template", "origin"), regression_cases())
def test_every_bypass_found_so_far_is_refused(template: str, origin: str) -> None:
    statement = fill(template, "/tmp/canary.csv", "/tmp/out")
    assert not classify(statement).read_only, origin
    with pytest.raises(ReadOnlyViolation) as caught:
        check_statement(statement, {}, write=False)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("add --write to change the store")


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("MATCH (m:Model) WITH * CREATE (e:Evil) RETURN e", "uses CREATE"),
        ("MATCH (m:Model) WITH * LOAD CSV FROM 'file:///x' AS l RETURN l", "uses LOAD"),
        ("MATCH ((a)-->(b))* LOAD CSV FROM 'file:///x' AS l RETURN l", "uses LOAD"),
        ("MATCH ((a)-->(b))* LOAD WITH HEADERS (a STRING) FROM 'x' RETURN *", "uses LOAD"),
        ("MATCH ((a)-->(b))* COPY (MATCH (q) RETURN q) TO '/x.csv'", "uses COPY"),
        ("MATCH ((a)-->(b))* USE other", "uses USE"),
        ("MATCH ((a)-->(b))* CHECKPOINT", "uses CHECKPOINT"),
        ("CALL apoc.load.json('x')", "calls apoc.load.json"),
        ("MATCH (n) RETURN n x", "'x' where a clause starts"),
        ("RETURN 1 //c\u2028RETURN 2", "U+2028"),
        ("RETURN 1 AS x; RETURN 2 AS y", "a second statement"),
        ("RETURN 'unterminated", "never closed"),
    ],
)
def test_a_refusal_is_one_line_that_names_the_clause(statement: str, named: str) -> None:
    message = classify(statement).refusal()
    assert named in message and "\n" not in message, message
    assert message.endswith("add --write to change the store")


@pytest.mark.parametrize(
    ("text", "fine"),
    [
        ("RETURN 1 //c\nAS x", True),
        ("RETURN 1 //c\r\nAS x", True),
        ("RETURN 1 AS x //c", True),
        ("RETURN 1 //c\rAS x", False),  # ArcadeDB ends the comment there, LadybugDB does not
        ("RETURN 1 //c\u2028AS x", False),  # both read it as part of the comment
        ("RETURN 1 /* a /* b */ AS x", False),
        ("RETURN 1 /* a", False),
        ("RETURN 'a", False),
        ("RETURN `a", False),
        ("RETURN 1 \ufeffAS x", False),
        ("RETURN 1 \\ 2", False),
    ],
)
def test_the_lexer_refuses_what_the_engines_read_differently(text: str, fine: bool) -> None:
    assert (not classify(text).problems) is fine, classify(text).problems


def test_a_lexer_error_does_not_scan_the_rest_again() -> None:
    """An unterminated comment or string ends lexing: no quadratic rescans of a long tail."""
    found = classify("RETURN 1 AS x " + "/*" * 20000)
    assert found.problems == ("a /* comment that is never closed",)


def test_skip_and_limit_beyond_what_the_engine_takes_are_named() -> None:
    statement = "MATCH (n) RETURN n SKIP $s LIMIT 4294967296"
    with pytest.raises(InputError, match=r"LIMIT 4294967296 .*at most 2147483647"):
        check_statement(statement, {"s": 0}, write=False, largest_count=INT32_MAX)
    with pytest.raises(InputError, match=r"SKIP 2147483648 "):
        check_statement(statement, {"s": 2**31}, write=False, largest_count=INT32_MAX)
    check_statement(statement, {"s": 0}, write=False)  # no limit given: the engine's own range
    check_statement("MATCH (n) RETURN n LIMIT 2147483647", {}, write=False, largest_count=INT32_MAX)


def test_schema_changes_between_snapshots() -> None:
    before = {"label": frozenset({"Model"}), "index": frozenset({"a"})}
    after = {"label": frozenset({"Model", "Evil"}), "index": frozenset()}
    changes = changes_between(before, after)
    assert [str(c) for c in changes] == ["label Evil was created", "index a was dropped"]
    assert changes[0].named_in("MATCH (m) CREATE (:evil)")  # names compare case-insensitively
    assert not changes[0].named_in("MATCH (m:Model) RETURN m")  # another client's change
    assert changes[1].named_in("//c\rDROP INDEX a")
    assert SchemaChange("index", "Model[x]", True).named_in("CREATE INDEX FOR (n:M) ON (n.y)")


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


@pytest.mark.parametrize(
    ("template", "origin"),
    [case for case in regression_cases() if "{canary}" in case[0] or "INDEX" in case[0]],
)
def test_the_consoles_check_refuses_every_file_and_schema_bypass(
    template: str, origin: str
) -> None:
    """The explorer's console refuses these itself (issue 22: ``//c\rLOAD CSV`` printed a file
    there): each reaches beyond the graph, or is text the engines read differently."""
    statement = fill(template, "/tmp/canary.csv", "/tmp/out")
    assert classify(statement).beyond_the_graph, origin


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
