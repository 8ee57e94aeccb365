"""The clauses a Cypher statement is made of, found where the engines' parsers find them.

:func:`scan` walks the tokens of :mod:`graphstore.cypher_tokens` with the little state an
expression parser keeps: is an operand expected next (after ``(``, ``,``, an operator, a clause
keyword) or an operator (after a name, a literal, a closing bracket)?

- A word where an operator is expected that is no operator (``AND``, ``IN``, ``AS``, ``ASC``,
  ``WHEN`` of a ``CASE``, ...) starts a clause, and so does every word at the start of a
  statement, after ``UNION`` or at the start of a subquery. So ``WITH * CREATE`` is a clause
  (``*`` after ``WITH`` is an operand).
- Where an operand is expected, a clause keyword whose clause could pass for an expression
  (``CREATE (e)``, ``CALL {``, ``DELETE (m)``, ``SET``, ...) or that starts a read clause is a
  clause too, unless the spot can only hold a name: after ``.`` (``n.set``), ``:`` or ``AS``, or
  before ``:`` or ``.`` (``{set: 1}``, ``(load:Pattern)``). So ``((a)-->(b))* CREATE (e)`` (a
  quantified path, where ``*`` looks like multiplication) is a clause. Other clause keywords
  there are names (``ORDER BY copy``) unless what follows can only go on their clause
  (``LOAD CSV``, ``COPY (``, ``USE db``).
- Two operands in a row (``n 'x'``, ``load 'f'``) are refused: no Cypher reads that.

A ``{`` after ``CALL``, ``EXISTS``, ``COUNT`` or ``COLLECT``, and any ``{`` that does not read
as a map, opens a subquery whose clauses are checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphstore.cypher_tokens import Token

# The clause keywords of every engine (LadybugDB's parser lists its own; Neo4j 5 / Cypher 25
# and ArcadeDB's openCypher with GQL's INSERT, FINISH, FILTER, LET, NEXT, WHEN, FOR; SQL's
# SELECT): in a spot where a name could stand, such a word starts a clause unless the spot can
# only hold a name.
CLAUSE_WORDS: frozenset[str] = frozenset(
    {
        *("MATCH", "OPTIONAL", "WHERE", "WITH", "UNWIND", "RETURN", "ORDER", "SKIP", "LIMIT"),
        *("OFFSET", "UNION", "CALL", "YIELD", "SHOW", "EXPLAIN", "PROFILE", "CYPHER", "USE"),
        *("USING", "CREATE", "MERGE", "SET", "DELETE", "DETACH", "NODETACH", "REMOVE"),
        *("FOREACH", "INSERT", "FINISH", "FILTER", "LET", "NEXT", "WHEN", "FOR", "SELECT"),
        *("LOAD", "COPY", "EXPORT", "IMPORT", "ATTACH", "INSTALL", "UNINSTALL", "UPDATE"),
        *("FORCE", "CHECKPOINT", "ANALYZE", "ALTER", "DROP", "RENAME", "COMMENT", "TRUNCATE"),
        *("BEGIN", "COMMIT", "ROLLBACK", "START", "STOP", "TERMINATE", "GRANT", "REVOKE"),
        *("DENY", "ENABLE", "DISABLE", "DEALLOCATE", "REALLOCATE"),
    }
)
# Clause words may stand for a name where an operand is expected (``ORDER BY layer, filter``,
# ``ORDER BY copy`` after ``AS copy``) when an operator, a read clause or nothing follows; one
# followed by what only its clause takes (``LOAD CSV``, ``USE db``, ``ATTACH 'f'``, ``COPY (``)
# is a clause. These never are names: their clause form reads like a function call or a
# parenthesised expression (``CREATE (e)``, ``CALL {``, ``DELETE (m)``), or is complete on its
# own (``CHECKPOINT``, ``COMMIT``), so nothing after them would give them away.
_NEVER_A_NAME = frozenset(
    {"CREATE", "MERGE", "INSERT", "FOREACH", "CALL", "DELETE", "DETACH", "NODETACH"}
    | {"SET", "REMOVE", "SELECT", "CHECKPOINT", "FINISH", "BEGIN", "COMMIT", "ROLLBACK"}
    | {"ANALYZE", "START", "STOP", "TERMINATE"}
)
# GQL's read clauses: ignored inside a clause that is refused already
_GQL_READS = frozenset({"FILTER", "LET", "FOR", "NEXT", "WHEN"})
#: clauses that only read, each followed by an expression or pattern
READ_CLAUSES: tuple[str, ...] = (
    "MATCH",
    "OPTIONAL MATCH",
    "WHERE",
    "WITH",
    "UNWIND",
    "RETURN",
    "ORDER BY",
    "SKIP",
    "LIMIT",
    "YIELD",
)
# the words that start READ_CLAUSES and the other clauses the allow-list takes
_READ_WORDS = frozenset(
    {"MATCH", "OPTIONAL", "WHERE", "WITH", "UNWIND", "RETURN", "ORDER", "SKIP", "LIMIT"}
    | {"YIELD", "UNION", "EXPLAIN", "PROFILE", "SHOW"}
)
_PAIRS = {"OPTIONAL": "MATCH", "ORDER": "BY", "DETACH": "DELETE"}
_INFIX = frozenset({"AND", "OR", "XOR", "IN", "CONTAINS", "IS"})
_POSTFIX = frozenset({"ASC", "DESC", "ASCENDING", "DESCENDING"})
# path selectors and modes (Neo4j's ``MATCH ALL SHORTEST (a)…``, LadybugDB's ``[e* TRAIL 1..3]``)
_PATH_WORDS = frozenset({"SHORTEST", "ALL", "ANY", "TRAIL", "ACYCLIC", "WALK", "PATHS", "GROUPS"})
# LadybugDB's join hints: ``MATCH … HINT (a JOIN b) JOIN c``
_HINT_WORDS = frozenset({"HINT", "JOIN", "MULTI_JOIN"})
_PREFIX = frozenset({"NOT", "DISTINCT"})
_LITERALS = frozenset({"NULL", "TRUE", "FALSE"})
_SUBQUERY_WORDS = frozenset({"EXISTS", "COUNT", "COLLECT"})
#: ``SHOW [kind ...] INDEXES`` / ``CONSTRAINTS`` (Neo4j, ArcadeDB) only list the schema
_SHOW_KINDS = frozenset(
    {
        *("ALL", "RANGE", "TEXT", "POINT", "LOOKUP", "FULLTEXT", "VECTOR", "BTREE", "UNIQUE"),
        *("UNIQUENESS", "EXIST", "EXISTENCE", "NODE", "RELATIONSHIP", "REL", "KEY", "PROPERTY"),
    }
)
_SHOW_WHAT = frozenset({"INDEX", "INDEXES", "CONSTRAINT", "CONSTRAINTS"})
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# words that may follow a name: operators, the words of AS and CASE, read clauses
_AFTER_A_NAME = (
    _INFIX
    | _POSTFIX
    | _PATH_WORDS
    | _HINT_WORDS
    | _READ_WORDS
    | frozenset({"AS", "STARTS", "ENDS", "WHEN", "THEN", "ELSE", "END"})
)
#: every word with a meaning of its own here: a non-ASCII spelling of one is refused
KEYWORDS: frozenset[str] = (
    CLAUSE_WORDS
    | _INFIX
    | _POSTFIX
    | _PATH_WORDS
    | _HINT_WORDS
    | _PREFIX
    | _LITERALS
    | _SUBQUERY_WORDS
    | frozenset({"AS", "BY", "STARTS", "ENDS", "CASE", "THEN", "ELSE", "END", "MATCH", "ALL"})
)

OPERAND, OPERATOR, CLAUSE = "operand", "operator", "clause"


@dataclass
class _Frame:
    """An open bracket (``(``, ``[``, ``{``) or ``CASE``, and what its body is."""

    kind: str
    query: bool = False  # a { } subquery: its words start clauses
    pattern: bool = False  # EXISTS / COUNT / COLLECT { (a)-->(b) }: may start with a pattern
    call: bool = False  # CALL { } or CALL (x) { }
    call_scope: bool = False  # the (x) of CALL (x) { }


@dataclass
class Scan:
    """What :func:`scan` found: clauses that do not only read, problems, parameters, counts."""

    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    parameters: set[str] = field(default_factory=set)
    #: ``(SKIP or LIMIT, the token after it)``, for the range check
    counts: list[tuple[str, Token]] = field(default_factory=list)


def scan(tokens: tuple[Token, ...], read_procedures: frozenset[str]) -> Scan:
    """The clauses of ``tokens`` that are not read-only, and anything that cannot be read.

    ``read_procedures`` (lower case, dotted) are the procedures ``CALL`` may name.
    """
    scanner = _Scanner(tokens, read_procedures)
    scanner.run()
    return scanner.found


class _Scanner:
    def __init__(self, tokens: tuple[Token, ...], read_procedures: frozenset[str]) -> None:
        self.tokens = tokens
        self.read_procedures = read_procedures
        self.i = 0
        self.state = CLAUSE
        self.frames: list[_Frame] = []
        self.found = Scan()
        # the bracket depth of a refused clause, while inside it: only clause keywords count
        self.lenient: int | None = None
        self.scope_pending = False  # the next ( is CALL's scope

    # helpers ---------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def peek_text(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return token.upper if token is not None and token.kind != "string" else ""

    def take_name(self) -> bool:
        """Consume a name (word or backquoted) if one comes next."""
        token = self.peek()
        if token is not None and token.kind in ("word", "quoted"):
            self.i += 1
            self.state = OPERATOR
            return True
        return False

    def problem(self, text: str) -> None:
        self.found.problems.append(text)

    # the walk --------------------------------------------------------------------------------

    def run(self) -> None:
        while self.i < len(self.tokens):
            token = self.tokens[self.i]
            self.i += 1
            if token.kind == "word":
                self.word(token)
            elif token.kind == "symbol":
                self.symbol(token.text)
            else:
                if self.state == CLAUSE:
                    self.problem(f"{token.text[:20]} where a clause should start")
                elif self.state == OPERATOR and self.lenient is None:  # no Cypher has two in a row
                    self.problem(f"{token.text[:20]} right after a name or value")
                if token.kind == "param":
                    name = token.text[1:]
                    self.found.parameters.add(
                        name[1:-1].replace("``", "`") if name.startswith("`") else name
                    )
                self.state = OPERATOR
        for frame in self.frames:
            kind = "CASE without END" if frame.kind == "CASE" else f"{frame.kind} never closed"
            self.problem(f"a {kind}")

    def may_follow_clause_start(self, text: str) -> bool:
        """A ``;``, a closing bracket, or the pattern of ``EXISTS { (a)-->(b) }``."""
        if text == "(":
            return bool(self.frames) and self.frames[-1].pattern
        return text in _CLOSERS or text == ";"

    def word(self, token: Token) -> None:
        if self.state == CLAUSE:
            self.clause(token)
        elif self.state == OPERATOR:
            self.after_operand(token)
        else:
            self.operand(token)

    def after_operand(self, token: Token) -> None:
        """A word after a complete operand: an operator, or the start of a clause."""
        word = token.upper
        top = self.frames[-1] if self.frames else None
        if word in _INFIX or word in _PATH_WORDS or word in _HINT_WORDS:
            self.state = OPERAND
        elif word in ("STARTS", "ENDS") and self.peek_text() == "WITH":
            self.i += 1
            self.state = OPERAND
        elif word in _POSTFIX:
            pass
        elif word == "AS":
            self.state = OPERAND
            self.take_name()
        elif top is not None and top.kind == "CASE" and word in ("WHEN", "THEN", "ELSE", "END"):
            self.state = OPERAND
            if word == "END":
                self.frames.pop()
                self.state = OPERATOR
        else:
            self.clause(token)

    def operand(self, token: Token) -> None:
        """A word where an operand is expected: a name, a keyword of an expression, a clause."""
        word = token.upper
        if self.peek_text() in (":", "."):  # n:Label, {key: …}, n.property: a name
            self.state = OPERATOR
        elif word in _PREFIX:
            self.state = OPERAND
        elif word in _LITERALS:
            self.state = OPERATOR
        elif word == "CASE":
            self.frames.append(_Frame("CASE"))
            if self.peek_text() == "WHEN":
                self.i += 1
        elif word in _SUBQUERY_WORDS and self.peek_text() == "{":
            self.i += 1
            self.open_subquery(pattern=True)
        elif word in _PATH_WORDS and self.selects_paths():
            pass
        elif word in _NEVER_A_NAME or word in _READ_WORDS:
            self.clause(token)
        elif word in CLAUSE_WORDS and self.clause_goes_on():
            self.clause(token)  # LOAD CSV, COPY (…) TO, USE db: not a name
        else:
            self.state = OPERATOR  # a name (a function's when a ( follows)

    def clause_goes_on(self) -> bool:
        """What follows a clause word can only go on its clause: ``(``, ``{``, a value, a name
        or a word that is no operator (a name is followed by an operator, a clause or nothing)."""
        following = self.peek()
        if following is None:
            return False
        if following.kind == "symbol":
            return following.text in ("(", "{")
        if self.peek_text() == "WITH" and self.peek_text(1) == "HEADERS":  # LadybugDB's LOAD
            return True
        return following.kind != "word" or following.upper not in _AFTER_A_NAME

    def selects_paths(self) -> bool:
        """A path word (``SHORTEST``) before a count, a range, a pattern or another path word."""
        following = self.peek()
        if following is None:
            return False
        if following.kind == "number" or following.text in ("..", "]"):
            return True
        return following.upper in _PATH_WORDS or (following.text == "(" and self.state_is_match())

    def state_is_match(self) -> bool:
        """Whether the path word stands right after MATCH (``MATCH ANY (a)``, not ``any(x …)``)."""
        before = self.tokens[self.i - 2] if self.i >= 2 else None
        return before is not None and before.upper == "MATCH"

    def symbol(self, text: str) -> None:
        if self.state == CLAUSE and not self.may_follow_clause_start(text):
            self.problem(f"{text} where a clause should start")
        if text in ("(", "["):
            self.frames.append(_Frame(text, call_scope=self.scope_pending and text == "("))
            self.scope_pending = False
            self.state = OPERAND
        elif text == "{":
            self.open_brace()
        elif text in _CLOSERS:
            self.close(text)
        elif text == ".":
            if self.peek_text() == "*":
                self.i += 1
                self.state = OPERATOR
            elif not self.take_name():
                self.state = OPERAND
        elif text == ":":
            self.state = OPERAND
            nxt = self.peek_text()
            if nxt not in _PREFIX | _LITERALS | _SUBQUERY_WORDS and nxt != "CASE":
                self.take_name()
        elif text == ";":
            self.end_of_statement()
        elif text == "*":  # an operand (RETURN *, count(*)), a product, or -[*1..3]-
            in_relationship = bool(self.frames) and self.frames[-1].kind == "["
            self.state = OPERATOR if self.state == OPERAND and not in_relationship else OPERAND
        else:
            self.state = OPERAND  # an operator, ",", ".." or "|"

    def open_brace(self) -> None:
        if self.looks_like_map():
            self.frames.append(_Frame("{"))
            self.state = OPERAND
        else:  # a subquery, or something that is no map: its words are read as clauses
            self.open_subquery(pattern=False)

    def open_subquery(self, *, pattern: bool, call: bool = False) -> None:
        self.frames.append(_Frame("{", query=True, pattern=pattern, call=call))
        self.state = CLAUSE
        self.read_clause_starts()

    def looks_like_map(self) -> bool:
        """``{}``, ``{key: …}``, a map projection ``{.x, y}`` or a quantifier ``{1,3}``."""
        first = self.peek()
        if first is None:
            return False
        if first.text in ("}", ".", ",") or first.kind == "number":
            return True
        return first.kind in ("word", "quoted") and self.peek_text(1) in (":", ",", "}")

    def close(self, text: str) -> None:
        frame = self.frames.pop() if self.frames else None
        if frame is None or frame.kind != _CLOSERS[text]:
            self.problem(f"a {text} that closes nothing, or the wrong bracket")
            if frame is not None and frame.kind == "CASE":
                self.frames.append(frame)
            self.state = OPERATOR
            return
        self.state = OPERATOR
        if frame.call_scope:
            if self.peek_text() == "{":
                self.i += 1
                self.open_subquery(pattern=False, call=True)
            else:
                self.refuse("CALL")
        elif frame.call and self.peek_text() == "IN":
            self.refuse("CALL IN TRANSACTIONS")

    def end_of_statement(self) -> None:
        if self.frames:
            self.problem("a ; inside brackets")
        if self.i < len(self.tokens):
            self.problem("a second statement after ;")
        self.state = CLAUSE

    # clauses ---------------------------------------------------------------------------------

    def clause(self, token: Token) -> None:
        """``token`` starts a clause: a read clause, ``UNION``, ``CALL``, ``SHOW`` or refused."""
        word = token.upper
        head = word
        if word in _PAIRS and self.peek_text() == _PAIRS[word]:
            self.i += 1
            head = f"{word} {_PAIRS[word]}"
        if head in READ_CLAUSES:
            self.read_clause_starts()
            self.state = OPERAND
            if head in ("SKIP", "LIMIT") and self.peek() is not None:
                self.found.counts.append((head, self.tokens[self.i]))
        elif head == "UNION":
            if self.peek_text() == "ALL":
                self.i += 1
            self.read_clause_starts()
            self.state = CLAUSE
        elif head in ("EXPLAIN", "PROFILE") and self.i == 1:
            self.state = CLAUSE
        elif head == "CALL":
            self.call()
        elif head == "SHOW" and self.show_schema():
            self.read_clause_starts()
            self.state = OPERATOR
        elif self.lenient is not None and (word not in CLAUSE_WORDS or word in _GQL_READS):
            self.state = OPERATOR  # a name inside a clause that is refused already
        else:
            self.refuse(head if word in CLAUSE_WORDS else token.text)

    def read_clause_starts(self) -> None:
        """A read clause ends a refused one at its own depth (not one nested inside it)."""
        if self.lenient is not None and len(self.frames) <= self.lenient:
            self.lenient = None

    def refuse(self, label: str) -> None:
        self.found.refused.append(label)
        if self.lenient is None:
            self.lenient = len(self.frames)
        self.state = OPERAND

    def call(self) -> None:
        """``CALL { … }``, ``CALL (x) { … }`` or ``CALL name(…)`` of a read-only procedure."""
        following = self.peek()
        if following is not None and following.text == "{":
            self.i += 1
            self.open_subquery(pattern=False, call=True)
        elif following is not None and following.text == "(":
            self.scope_pending = True
            self.state = OPERAND
        else:
            procedure = self.procedure_name()
            if procedure in self.read_procedures:
                self.read_clause_starts()
                self.state = OPERATOR
            else:
                self.refuse(f"CALL {procedure or '?'}")

    def procedure_name(self) -> str:
        """The dotted name that comes next (lower case, consumed), e.g. ``db.labels``."""
        parts = []
        while (token := self.peek()) is not None and token.kind in ("word", "quoted"):
            text = token.text[1:-1].replace("``", "`") if token.kind == "quoted" else token.text
            parts.append(text.lower())
            self.i += 1
            if self.peek_text() != "." or self.peek(1) is None:
                break
            self.i += 1
        return ".".join(parts)

    def show_schema(self) -> bool:
        """``SHOW [kind ...] INDEXES|CONSTRAINTS`` comes next (consumed when it does)."""
        ahead = 0
        while self.peek_text(ahead) in _SHOW_KINDS:
            ahead += 1
        if self.peek_text(ahead) in _SHOW_WHAT:
            self.i += ahead + 1
            return True
        return False


__all__ = ["CLAUSE_WORDS", "KEYWORDS", "READ_CLAUSES", "Scan", "scan"]
