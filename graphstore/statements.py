"""The read-only policy: a statement may run without ``write`` only if it is made of read clauses.

The engines enforce read-only on their own only for graph changes; LadybugDB happily runs
``COPY (…) TO '/path'``, ``LOAD FROM '/etc/passwd'`` or ``CHECKPOINT`` in a read-only
transaction, and ArcadeDB ignores Bolt's READ access mode (schema commands, ``LOAD CSV``, new
labels that outlive a rollback). So every statement a store runs without ``write=True`` is
lexed as the engines lex it (:mod:`graphstore.cypher_tokens`), its clauses are found where
their parsers find them (:mod:`graphstore.cypher_clauses`), and it runs only when every clause
is on the allow-list:

    MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION [ALL],
    CALL { subquery } and CALL (vars) { subquery } of the same clauses, CALL of a procedure in
    :data:`READ_PROCEDURES` (with YIELD), SHOW [kind] INDEXES / CONSTRAINTS, and a leading
    EXPLAIN or PROFILE.

Everything else is refused before it runs, with one line that names the clause: clauses that
write the graph, files or the schema, and also clauses this policy does not know, a second
statement after ``;``, and text the engines lex differently (a ``//`` comment ended by ``\\r``
or ``\\u2028``, a nested ``/*``, an unterminated string, a zero-width space). Strings, comments
and names do not count: ``RETURN 'COPY'``, ``n.load`` and ``AS copy`` run. The explorer's Cypher
console uses this policy too (:attr:`Classification.beyond_the_graph`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explgraph.core.errors import InputError, QuerySyntaxError, ReadOnlyViolation
from graphstore.cypher_clauses import CLAUSE_WORDS, KEYWORDS, READ_CLAUSES, scan
from graphstore.cypher_tokens import Token, lex, tokenize

#: refused clause keywords, kept for callers of the deny-list era; the policy is an allow-list
REFUSED_KEYWORDS: frozenset[str] = CLAUSE_WORDS - {
    "MATCH",
    "OPTIONAL",
    "WHERE",
    "WITH",
    "UNWIND",
    "RETURN",
    "ORDER",
    "SKIP",
    "LIMIT",
    "UNION",
    "CALL",
    "YIELD",
    "EXPLAIN",
    "PROFILE",
    "SHOW",
}
#: refused clauses that change only the graph; every other refusal (files, extensions, other
#: databases, transactions, procedures, unknown clauses, text the engines lex differently;
#: ``DETACH`` without ``DELETE`` detaches a database) reaches beyond it
GRAPH_WRITES: frozenset[str] = frozenset(
    ("CREATE", "MERGE", "SET", "DELETE", "DETACH DELETE", "REMOVE", "FOREACH", "DROP", "INSERT")
)

#: Procedures / table functions known to only read: LadybugDB's catalogue functions and the
#: Bolt servers' ``db.*`` introspection (ArcadeDB has labels, relationship types, property
#: keys and the schema visualisation; indexes and constraints are ``SHOW INDEXES`` /
#: ``SHOW CONSTRAINTS`` there and on Neo4j 5). ``CALL`` of anything else (``apoc.export.*``,
#: ``db.create*``, LadybugDB's ``CALL threads = 4``, ...) needs ``write``.
READ_PROCEDURES: frozenset[str] = frozenset(
    {
        # LadybugDB / Kùzu
        "show_tables",
        "table_info",
        "show_connection",
        "show_functions",
        "show_indexes",
        "show_attached_databases",
        "show_loaded_extensions",
        "show_sequences",
        "db_version",
        "current_setting",
        # Neo4j / ArcadeDB
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.info",
        "dbms.components",
    }
)
#: the allow-list in words, for messages
READ_ONLY_GRAMMAR = (
    f"{', '.join(READ_CLAUSES[:-1])}, UNION, CALL of read-only procedures and subqueries, "
    "SHOW INDEXES/CONSTRAINTS, EXPLAIN/PROFILE"
)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
_INT64 = (-(2**63), INT64_MAX)


@dataclass(frozen=True)
class Classification:
    """What a statement does: what keeps it from being read-only, and the parameters it uses.

    ``refused`` names clauses (``CREATE``, ``DETACH DELETE``, ``CALL apoc.export.csv.all``) or,
    for a word where a clause starts that no engine has, the word as written; ``problems``
    says what about the text the engines read differently (or cannot read at all).
    """

    refused: tuple[str, ...]
    parameters: frozenset[str]
    problems: tuple[str, ...] = ()
    #: ``(SKIP or LIMIT, the token after it)``
    counts: tuple[tuple[str, Token], ...] = ()

    @property
    def read_only(self) -> bool:
        """True when the statement may run without ``write``."""
        return not self.refused and not self.problems

    @property
    def beyond_the_graph(self) -> tuple[str, ...]:
        """What is refused for reaching files, extensions, databases, procedures or the unknown.

        Example:
            >>> classify("MATCH (n) SET n.x = 1 WITH n LOAD FROM 'f.csv' RETURN *").beyond_the_graph
            ('LOAD',)
        """
        return tuple(c for c in self.refused if c not in GRAPH_WRITES) + self.problems

    def refusal(self) -> str:
        """One line that says why the statement is not read-only ("" when it is)."""
        if self.refused:
            first = self.refused[0]
            if first.startswith("CALL "):
                what = f"calls {first[5:]}, which is not known to be a read-only procedure"
            elif first.split()[0] in CLAUSE_WORDS:
                what = f"uses {first}, which is not a read-only clause"
            else:
                what = f"has {first!r} where a clause starts, which is not a read-only clause"
        elif self.problems:
            what = f"has {self.problems[0]}"
        else:
            return ""
        return (
            f"the statement {what} (read-only statements use only {READ_ONLY_GRAMMAR}): "
            "add --write to change the store"
        )


def classify(cypher: str) -> Classification:
    """Classify ``cypher``: what keeps it from being read-only, which ``$parameters`` it uses.

    Example:
        >>> classify("MATCH (n) RETURN 'COPY' AS word").read_only
        True
        >>> classify("COPY (MATCH (n) RETURN n) TO '/tmp/x.csv'").refused
        ('COPY',)
        >>> classify("MATCH (m:Model) WITH * CREATE (e:Evil) RETURN e").refused
        ('CREATE',)
    """
    lexed = lex(cypher, KEYWORDS)
    found = scan(lexed.tokens, READ_PROCEDURES)
    return Classification(
        refused=tuple(dict.fromkeys(found.refused)),
        parameters=frozenset(found.parameters),
        problems=tuple(dict.fromkeys((*lexed.problems, *found.problems))),
        counts=tuple(found.counts),
    )


def check_statement(
    cypher: str,
    params: Mapping[str, Any],
    *,
    write: bool,
    largest_count: int | None = None,
) -> Classification:
    """Refuse ``cypher`` before it runs when it needs ``write`` or its parameters are wrong.

    ``largest_count`` is the largest SKIP / LIMIT the engine takes (ArcadeDB: 2**31 - 1).

    Raises:
        ReadOnlyViolation: without ``write``, anything that is not provably read-only: a
            clause off the allow-list, a second statement, text the engines lex differently
            (the message names it and says to add --write).
        QuerySyntaxError: a ``$parameter`` the statement uses has no value; without ``write``,
            a bracket, string, comment or CASE that is never closed (nothing else is wrong).
        InputError: an integer parameter does not fit in 64 bits, or a SKIP / LIMIT is larger
            than ``largest_count``.
    """
    found = classify(cypher)
    if not write and not found.read_only:
        if not found.refused and all(map(_unfinished, found.problems)):
            # an open bracket or string is a typo far more often than an attack: say so
            raise QuerySyntaxError(f"the statement has {found.problems[0]}: check the Cypher")
        raise ReadOnlyViolation(found.refusal())
    unbound = sorted(found.parameters - set(params))
    if unbound:
        raise QuerySyntaxError(
            f"parameter ${unbound[0]} has no value: pass it with -p {unbound[0]}=VALUE"
        )
    for name, value in params.items():
        _check_integers(name, value)
    if largest_count is not None:
        _check_counts(found, params, largest_count)
    return found


def _unfinished(problem: str) -> bool:
    """A bracket, string, comment or CASE the statement opens and never closes."""
    return problem.endswith(("never closed", "CASE without END"))


def _check_counts(found: Classification, params: Mapping[str, Any], largest: int) -> None:
    for clause, token in found.counts:
        value: Any = None
        if token.kind == "number" and token.text.isdigit():
            value = int(token.text)
        elif token.kind == "number" and token.text[:2].lower() in ("0x", "0o"):
            value = int(token.text, 0)
        elif token.kind == "param":
            value = params.get(token.text[1:].strip("`"))
        if isinstance(value, int) and not isinstance(value, bool) and value > largest:
            raise InputError(
                f"{clause} {value} is more than this store takes (at most {largest}): "
                f"use a smaller {clause}"
            )


def _check_integers(name: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        raise InputError(
            f"parameter {name} = {value} does not fit in a 64-bit integer "
            f"(range {_INT64[0]} .. {_INT64[1]}): pass a smaller number"
        )
    if isinstance(value, list | tuple):
        for item in value:
            _check_integers(name, item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_integers(name, item)


__all__ = [
    "GRAPH_WRITES",
    "INT32_MAX",
    "INT64_MAX",
    "READ_ONLY_GRAMMAR",
    "READ_PROCEDURES",
    "REFUSED_KEYWORDS",
    "Classification",
    "Token",
    "check_statement",
    "classify",
    "tokenize",
]
