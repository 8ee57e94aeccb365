"""A small Cypher statement classifier: what a statement may do, decided before it runs.

The engines enforce read-only on their own only for graph changes; LadybugDB happily runs
``COPY (…) TO '/path'``, ``LOAD FROM '/etc/passwd'`` or ``CHECKPOINT`` in a read-only
transaction, and ArcadeDB ignores Bolt's READ access mode (schema commands, ``LOAD CSV``).
So every statement a store runs without ``write=True`` is tokenised here first and refused when
it contains a clause that writes the graph, writes or reads files, changes the schema, manages
or switches the database (``USE``) or calls a procedure that is not known to be read-only. The
explorer's Cypher console refuses the same statements (:attr:`Classification.beyond_the_graph`
names the ones that reach past the graph).

The tokeniser skips string literals, comments and backquoted names, so ``RETURN 'COPY'`` or a
property called ``n.set`` is harmless. A keyword where no clause can stand — after ``.``,
``AS``, ``,``, ``(`` or an operator, or before ``:`` or ``.`` — is a name (``n.load``,
``AS copy``, ``{set: 1}``, ``(load:Pattern)``, ``load.layer``), not a clause. The policy errs on
the side of refusing: a false alarm only asks for ``--write``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explgraph.core.errors import InputError, QuerySyntaxError, ReadOnlyViolation

# Clause keywords and what they do; any of them refuses a statement without write.
_WRITES_GRAPH = ("CREATE", "MERGE", "SET", "DELETE", "REMOVE", "DETACH", "FOREACH", "DROP")
_FILES = ("COPY", "EXPORT", "IMPORT", "LOAD")
_ADMIN = (
    "CHECKPOINT",
    "ATTACH",
    "INSTALL",
    "ALTER",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "TERMINATE",
    "GRANT",
    "REVOKE",
    "DENY",
    "START",
    "STOP",
    "USE",
)
REFUSED_KEYWORDS: frozenset[str] = frozenset(_WRITES_GRAPH + _FILES + _ADMIN)
#: refused clauses that change only the graph; every other refused clause (files, extensions,
#: other databases, transactions, procedures; ``DETACH`` without ``DELETE`` detaches a database)
#: reaches beyond it
GRAPH_WRITES: frozenset[str] = frozenset(
    ("CREATE", "MERGE", "SET", "DELETE", "DETACH DELETE", "REMOVE", "FOREACH", "DROP")
)

#: Procedures / table functions known to only read: LadybugDB's catalogue functions and Neo4j's
#: ``db.*`` introspection. ``CALL`` of anything else (``apoc.export.*``, ``db.create*``, …)
#: needs ``write``. ``CALL { … }`` subqueries are fine: their clauses are checked like any other.
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
        "show_official_extensions",
        "show_sequences",
        "db_version",
        "current_setting",
        # Neo4j
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

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<line_comment>//[^\n]*)
    | (?P<block_comment>/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z))
    | (?P<quoted>`(?:[^`]|``)*(?:`|\Z))
    | (?P<param>\$(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)*`|[0-9]+))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
    | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_INT64 = (-(2**63), 2**63 - 1)
# A clause keyword never follows these tokens; a word there is a name (n.load, AS copy, (load).
_NAME_BEFORE = frozenset({".", "$", ",", "(", "[", "=", "<", ">", "+", "-", "*", "/", "%", "AS"})


@dataclass(frozen=True)
class Token:
    """One significant token: ``kind`` is word, param, string, quoted, number or symbol."""

    kind: str
    text: str


def tokenize(cypher: str) -> list[Token]:
    """The significant tokens of ``cypher`` (whitespace and comments dropped)."""
    tokens = []
    for match in _TOKEN.finditer(cypher):
        kind = match.lastgroup or "symbol"
        if kind in ("space", "line_comment", "block_comment"):
            continue
        tokens.append(Token(kind, match.group()))
    return tokens


@dataclass(frozen=True)
class Classification:
    """What a statement does: the clauses that need ``write`` and the parameters it uses."""

    refused: tuple[str, ...]
    parameters: frozenset[str]

    @property
    def read_only(self) -> bool:
        """True when nothing in the statement needs ``write``."""
        return not self.refused

    @property
    def beyond_the_graph(self) -> tuple[str, ...]:
        """The refused clauses that reach files, extensions, databases or procedures.

        Example:
            >>> classify("MATCH (n) SET n.x = 1 WITH n LOAD FROM 'f.csv' RETURN *").beyond_the_graph
            ('LOAD',)
        """
        return tuple(clause for clause in self.refused if clause not in GRAPH_WRITES)


def classify(cypher: str) -> Classification:
    """Classify ``cypher``: which of its clauses need ``write``, which ``$parameters`` it uses.

    Example:
        >>> classify("MATCH (n) RETURN 'COPY' AS word").read_only
        True
        >>> classify("COPY (MATCH (n) RETURN n) TO '/tmp/x.csv'").refused
        ('COPY',)
    """
    tokens = tokenize(cypher)
    refused: list[str] = []
    parameters: set[str] = set()
    for index, token in enumerate(tokens):
        if token.kind == "param":
            name = token.text[1:]
            parameters.add(name[1:-1].replace("``", "`") if name.startswith("`") else name)
            continue
        if token.kind != "word":
            continue
        before = tokens[index - 1].text.upper() if index else ""
        after = tokens[index + 1].text if index + 1 < len(tokens) else ""
        if before in _NAME_BEFORE or after in (":", "."):
            continue  # a property, variable, alias or map key, not a clause
        word = token.text.upper()
        if word in REFUSED_KEYWORDS:
            label = "DETACH DELETE" if word == "DETACH" and after.upper() == "DELETE" else word
            if word == "DELETE" and before.upper() == "DETACH":
                continue
            refused.append(label)
        elif word == "CALL" and after != "{":
            procedure = _procedure(tokens, index + 1)
            if procedure not in READ_PROCEDURES:
                refused.append(f"CALL {procedure or '?'}")
    return Classification(tuple(dict.fromkeys(refused)), frozenset(parameters))


def _procedure(tokens: list[Token], start: int) -> str:
    """The dotted name starting at ``tokens[start]`` (lower case), e.g. ``db.labels``."""
    parts = []
    index = start
    while index < len(tokens) and tokens[index].kind in ("word", "quoted"):
        parts.append(tokens[index].text.strip("`").lower())
        if index + 1 < len(tokens) and tokens[index + 1].text == ".":
            index += 2
        else:
            break
    return ".".join(parts)


def check_statement(cypher: str, params: Mapping[str, Any], *, write: bool) -> Classification:
    """Refuse ``cypher`` before it runs when it needs ``write`` or its parameters are wrong.

    Raises:
        ReadOnlyViolation: without ``write``, a clause that writes the graph or files, reads
            files, changes the schema or manages the database (the message names it).
        QuerySyntaxError: a ``$parameter`` the statement uses has no value.
        InputError: an integer parameter does not fit in 64 bits.
    """
    found = classify(cypher)
    if not write and found.refused:
        raise ReadOnlyViolation(
            f"the statement uses {', '.join(found.refused)}, which may change the store or "
            "touch files; read-only queries cannot (pass --write if you mean it)"
        )
    unbound = sorted(found.parameters - set(params))
    if unbound:
        raise QuerySyntaxError(
            f"parameter ${unbound[0]} has no value: pass it with -p {unbound[0]}=VALUE"
        )
    for name, value in params.items():
        _check_integers(name, value)
    return found


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
    "READ_PROCEDURES",
    "REFUSED_KEYWORDS",
    "Classification",
    "Token",
    "check_statement",
    "classify",
    "tokenize",
]
