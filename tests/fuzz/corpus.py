"""Hostile statements found so far: every bypass of the read-only policy, kept as regression cases.

Each is a template: ``{canary}`` is the path of a file with a secret (:func:`canary`), ``{out}``
a folder that must stay empty. Run by ``tests/unit/test_store_statements.py`` (the policy
refuses each) and ``tests/integration/test_store_readonly.py`` (``explgraph query`` on every
engine refuses each, changes nothing, writes nothing and never shows the secret); the fuzzer
(``tests/fuzz/test_readonly_fuzz.py``) starts from them too.
"""

from __future__ import annotations

from tests.helpers.store_observer import canary

#: every line break some engine or Python reads, and the bare \r the probe used
OTHER_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")

# (statement template, where it came from); "probe" = issue 22's probe
_FOUND: tuple[tuple[str, str], ...] = (
    *(
        # issue 22's probe: a keyword right after WITH * was taken for a name
        ("UNWIND [1] AS x WITH * LOAD FROM '{canary}' (header=false) RETURN *", "probe: LadybugDB"),
        (
            "UNWIND [1] AS x WITH * LOAD CSV FROM 'file://{canary}' AS line RETURN line",
            "probe: Bolt",
        ),
        (
            "MATCH (m:Model) WITH * CREATE (e:EvilStarLabel {{x: 1}}) RETURN e.x",
            "probe: Bolt label",
        ),
        # issue 22's probe: a // comment ended by a bare \r
        ("//c\rLOAD CSV FROM 'file://{canary}' AS line RETURN line", "probe: Bolt"),
        ("//c\rLOAD FROM '{canary}' (header=false) RETURN *", "probe: LadybugDB form"),
        ("//c\rCREATE INDEX evil_index FOR (n:Model) ON (n.architecture)", "probe: Bolt index"),
        # found while building the allow-list
        ("MATCH ((a)-->(b))* CREATE (e:EvilQpp) RETURN 1 AS c", "quantified path: * then CREATE"),
        ("MATCH ((a)-->(b))+ CREATE (e:EvilQpp) RETURN 1 AS c", "quantified path: + then CREATE"),
        ("INSERT (e:EvilInsert)", "GQL INSERT (ArcadeDB runs it)"),
        # found by the fuzzer: a clause word complete on its own where a name could stand
        ("MATCH ((a)-->(b))* CHECKPOINT", "fuzzer: quantified path then CHECKPOINT"),
        ("MATCH (m:Model) RETURN m LIMIT 1 CHECKPOINT", "CHECKPOINT after a count"),
        (
            "MATCH ((a)-->(b))* COPY (MATCH (q:Model) RETURN q.model_id) TO '{out}/q.csv'",
            "quantified path then COPY (",
        ),
        ("MATCH (m:Model) WITH DISTINCT * INSERT (e:EvilInsert)", "WITH DISTINCT * then INSERT"),
        ("MATCH (m:Model) WITH * MERGE (e:EvilMerge {{x: 1}}) RETURN e.x", "WITH * then MERGE"),
        ("MATCH (m:Model) WITH * SET m.evil = 1 RETURN m.evil", "WITH * then SET"),
        ("MATCH (m:Model) WITH * DETACH DELETE m", "WITH * then DETACH DELETE"),
        ("UNWIND [1] AS x WITH * CALL {{ CREATE (e:EvilCall) }} RETURN x", "CALL subquery write"),
        ("RETURN 1 AS x; CREATE (e:EvilSecond)", "a second statement (LadybugDB runs both)"),
        ("RETURN 1 AS `a\\` CREATE (e:EvilTick) //`", "backquotes take no backslash escape"),
        (
            "RETURN 1 AS a /* x /* y */ CREATE (e:EvilNest) RETURN 2 AS b // */",
            "no nested comments",
        ),
        ("MATCH (m:Model) ſET m.evil = 1", "a keyword in non-ASCII letters"),
        ("RETURN 1 AS a\u200bCREATE (e:EvilZeroWidth)", "a zero-width space"),
    ),
    *(
        (f"RETURN 1 AS a //c{br}CREATE (e:EvilBreak) RETURN 2 AS b", f"comment ended by {br!r}")
        for br in OTHER_LINE_BREAKS
    ),
    *(
        (f"RETURN 1 AS a //c{br}LOAD CSV FROM 'file://{{canary}}' AS l RETURN l", f"{br!r}: file")
        for br in OTHER_LINE_BREAKS
    ),
)


def regression_cases() -> list[tuple[str, str]]:
    """The corpus: ``(template, where it came from)``."""
    return list(_FOUND)


def fill(template: str, canary_path: str, out: str) -> str:
    """A template with its canary file and output folder."""
    return template.format(canary=canary_path, out=out)


__all__ = ["OTHER_LINE_BREAKS", "canary", "fill", "regression_cases"]
