"""Hypothesis strategies: statements of the read-only grammar, and hostile ones built from them.

:func:`read_statements` draws statements the policy must accept (clauses, patterns and
expressions over the store's labels). :func:`hostile_statements` hides a write, file or schema
clause in one: after a read prefix that ends where a clause may follow (``WITH *``, a quantified
path, ``UNION``, ``;``), joined by whitespace of every kind or a comment ended by every line
break, spelt in mixed case with odd spaces, sometimes wrapped in a string, a backquoted name or
a comment whose end the engines may read differently, and followed by something that prints what
the clause read. Templates hold ``{canary}`` (a file with a secret) and ``{out}`` (a folder that
must stay empty); :func:`tests.fuzz.corpus.fill` fills them.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fuzz.corpus import OTHER_LINE_BREAKS

LABELS = ("Model", "Layer", "Filter", "Pattern", "Image")
PROPERTIES = ("model_id", "layer", "x", "y", "sigma", "name", "depth", "load", "set", "copy")

# (the clause, what to add so that it prints what it read); braces doubled: these are templates
PAYLOADS: tuple[tuple[str, str], ...] = (
    ("CREATE (e:FuzzEvil {{x: 1}})", "RETURN e.x AS x"),
    ("MERGE (e:FuzzEvil {{x: 1}})", "RETURN e.x AS x"),
    ("INSERT (e:FuzzEvil {{x: 1}})", ""),
    ("SET m.fuzz = 1", "RETURN m.fuzz AS f"),
    ("REMOVE m.model_id", "RETURN m"),
    ("DETACH DELETE m", ""),
    ("DELETE (m)", ""),
    ("FOREACH (i IN [1] | CREATE (:FuzzEvil))", ""),
    ("CALL {{ CREATE (:FuzzEvil) }}", ""),
    ("CALL db.createLabel('FuzzEvil')", ""),
    ("LOAD CSV FROM 'file://{canary}' AS fuzz_line", "RETURN fuzz_line"),
    ("LOAD FROM '{canary}' (header=false)", "RETURN *"),
    ("LOAD WITH HEADERS (a STRING) FROM '{canary}'", "RETURN *"),
    ("COPY (MATCH (q:Model) RETURN q.model_id) TO '{out}/fuzz.csv'", ""),
    ("EXPORT DATABASE '{out}/fuzz-export'", ""),
    ("ATTACH '{out}/other.lbug' AS fuzzdb (dbtype lbug)", ""),
    ("LOAD EXTENSION json", ""),
    ("CREATE INDEX fuzz_index FOR (n:Model) ON (n.fuzz)", ""),
    ("CREATE CONSTRAINT fuzz_c FOR (n:FuzzEvil) REQUIRE n.k IS UNIQUE", ""),
    ("CREATE NODE TABLE FuzzEvil(k INT64, PRIMARY KEY(k))", ""),
    ("ALTER TABLE Model ADD fuzz INT64", ""),
    ("CHECKPOINT", ""),
    ("USE fuzzdb", ""),
)
# read parts after which a clause may start (or that a clause may be mistaken for part of)
PREFIXES = (
    "",
    "MATCH (m:Model)",
    "MATCH (m:Model) WITH *",
    "MATCH (m:Model) WITH DISTINCT *",
    "UNWIND [1] AS x WITH *",
    "MATCH (m:Model) WITH m, count(*) AS c",
    "OPTIONAL MATCH (m:Model) WITH * ORDER BY m.model_id LIMIT 1",
    "MATCH ((a)-->(b))*",
    "MATCH ((a)-->(b))+",
    "MATCH (m:Model) WHERE m.model_id <> ''",
    "MATCH (m:Model) RETURN m.model_id AS id UNION",
    "RETURN 1 AS a",
    "EXPLAIN MATCH (m:Model)",
    "CALL db.labels() YIELD label WITH *",
    "MATCH (m:Model) WITH * CALL {",
    "MATCH (m:Model) WHERE EXISTS {",
    "MATCH (m:Model) RETURN m.model_id AS `load`,",
)
SPACES = (" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", *OTHER_LINE_BREAKS)
COMMENTS = (
    *(f"//c{br}" for br in ("\n", "\r\n", *OTHER_LINE_BREAKS)),
    "/*c*/",
    "/* // */",
    "/*/*c*/",
)
JOINERS = (*SPACES, *COMMENTS, ";", "; ", ";\n", ",", "} ", ") ")
# a payload hidden where one engine may see code: strings, names, comments
WRAPPERS = (
    "{payload}",
    "{payload}",
    "{payload}",
    "RETURN 'a\\' {payload} //' AS s",
    'RETURN "a\\" {payload} //" AS s',
    "RETURN 1 AS `a\\` {payload} //`",
    "RETURN 1 AS `a``b` {payload}",
    "RETURN 1 AS a /* x /* y */ {payload} // */",
    "RETURN 1 AS a //c\r{payload}",
    "RETURN 1 AS a //c\u2028{payload}",
    "RETURN 'x''' {payload} //'",
)
SUFFIXES = ("", ";", " //", " /* */", "\n", "}")


@st.composite
def _mangled(draw: st.DrawFn, text: str) -> str:
    """``text`` in mixed case, its spaces replaced by any whitespace, ``s`` sometimes ``ſ``."""
    words = text.split(" ")
    out = []
    for word in words:
        if "{" in word and "}" in word:  # keep template fields intact
            out.append(word)
            continue
        chars = [c.swapcase() if draw(st.booleans()) else c for c in word]
        if draw(st.integers(0, 9)) == 0:
            chars = ["ſ" if c in "sS" else c for c in chars]
        out.append("".join(chars))
    spaces = [draw(st.sampled_from(SPACES)) for _ in out[1:]]
    return out[0] + "".join(space + word for space, word in zip(spaces, out[1:], strict=True))


@st.composite
def hostile_statements(draw: st.DrawFn) -> str:
    """A read prefix, a joiner, a write/file/schema clause (maybe wrapped), what prints it."""
    clause, follow = draw(st.sampled_from(PAYLOADS))
    payload = draw(_mangled(clause))
    if follow and draw(st.booleans()):
        payload += draw(st.sampled_from(SPACES)) + follow
    before, after = draw(st.sampled_from(WRAPPERS)).split("{payload}")
    prefix = draw(st.sampled_from(PREFIXES))
    joiner = draw(st.sampled_from(JOINERS)) if prefix else ""
    suffix = draw(st.sampled_from(SUFFIXES))
    return "".join(map(_literal, (prefix, joiner, before))) + payload + _literal(after + suffix)


def _literal(text: str) -> str:
    """``text`` as a template that fills to itself (its braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


_names = st.sampled_from(("m", "n", "p", "load", "copy", "use", "x1"))
_literals = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from(("'COPY'", "'LOAD CSV'", '"CREATE"', "'it\\'s'", "null", "true", "1.5")),
)


@st.composite
def _expression(draw: st.DrawFn, var: str) -> str:
    atom = draw(
        st.one_of(
            _literals,
            st.sampled_from(PROPERTIES).map(lambda p: f"{var}.{p}"),
            st.sampled_from(("count(*)", f"size(labels({var}))", f"{var}.x * 2 + 1")),
        )
    )
    form = draw(st.integers(0, 4))
    if form == 0:
        return f"CASE WHEN {atom} IS NULL THEN 0 ELSE 1 END"
    if form == 1:
        return "[v IN [1, 2] WHERE v > 0 | v * 2]"
    return atom


@st.composite
def read_statements(draw: st.DrawFn) -> str:
    """A statement of the read-only grammar over the store's labels."""
    var = draw(_names)
    label = draw(st.sampled_from(LABELS))
    head = draw(
        st.sampled_from(
            (
                f"MATCH ({var}:{label})",
                f"OPTIONAL MATCH ({var}:{label})",
                f"MATCH ({var}:{label})-[*1..2]->(q)",
                f"MATCH ({var}:{label}) WHERE {var}.x > 0 OR {var}.name STARTS WITH 'a'",
                f"MATCH ({var}:{label}) WITH *",
                f"MATCH ({var}:{label}) WITH DISTINCT {var} ORDER BY {var}.x DESC SKIP 0 LIMIT 5",
                f"UNWIND [1, 2] AS u MATCH ({var}:{label})",
            )
        )
    )
    space = draw(st.sampled_from((" ", "\n", "\t", "\u00a0", " // note\n", " /* note */ ")))
    expression = draw(_expression(var))
    alias = draw(st.sampled_from(("v", "copy", "load", "filter", "`set`")))
    tail = draw(st.sampled_from(("", f" ORDER BY {alias}", " LIMIT 3", ";")))
    union = draw(st.sampled_from(("", " UNION RETURN 0 AS {a}", " UNION ALL RETURN 0 AS {a}")))
    if union and tail == ";":
        tail = ""
    statement = f"{head}{space}RETURN {expression} AS {alias}{union.format(a=alias) or tail}"
    return _literal(statement)


__all__ = ["PAYLOADS", "PREFIXES", "hostile_statements", "read_statements"]
