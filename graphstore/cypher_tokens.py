"""Cypher's tokens, lexed as LadybugDB, Neo4j and ArcadeDB lex them; refused where they differ.

The read-only policy (:mod:`graphstore.statements`) is only as good as its view of where the
code is: a clause that the lexer takes for part of a comment or a string runs unseen. So the
lexer follows the engines and names every spot where they disagree, and the policy refuses it:

- ``//`` comments: LadybugDB ends them at ``\\n`` (a bare ``\\r`` is a syntax error there),
  ArcadeDB at ``\\n`` or ``\\r``; both read ``\\u2028``, ``\\u0085``, ``\\v``, ``\\f``, ... as
  part of the comment. A comment ends here at ``\\n`` or ``\\r\\n``; one that holds any other
  line break (``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``,
  ``\\u2029``) is refused.
- ``/* */`` comments do not nest on any engine; one that holds ``/*`` is refused all the same.
- Strings (``'…'``, ``"…"``) take backslash escapes on every engine; backquoted names double the
  backquote (`` `a``b` ``) and take no backslash escapes.
- Unterminated strings, names and comments, characters outside strings that no engine reads as
  whitespace or a name (zero-width spaces, byte-order marks, ``\\``, ``@``, ...) and keywords
  spelt with non-ASCII letters (``ſet``) are refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: every character some engine or Python reads as a line break (str.splitlines' set)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
    | (?P<line_comment>//[^{LINE_BREAKS}]*)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<open_block>/\*)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<open_string>['"])
    | (?P<quoted>`(?:[^`]|``)*`)
    | (?P<open_quoted>`)
    | (?P<param>\$(?:[^\W\d]\w*|`(?:[^`]|``)*`|[0-9]+))
    | (?P<number>0[xX][0-9A-Fa-f]+|0[oO][0-7]+
        |[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
    | (?P<word>[^\W\d]\w*)
    | (?P<symbol>\.\.|<>|<=|>=|=~|!=|\+=|::|\|\||[()\[\]{{}},.:;=<>+\-*/%^|&!])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_UNTERMINATED = {
    "open_block": "a /* comment that is never closed",
    "open_string": "a string that is never closed",
    "open_quoted": "a `name` that is never closed",
}


@dataclass(frozen=True)
class Token:
    """One significant token: ``kind`` is word, param, string, quoted, number or symbol."""

    kind: str
    text: str

    @property
    def upper(self) -> str:
        """The text in upper case, as keywords compare (case-insensitive on every engine)."""
        return self.text.upper()


@dataclass(frozen=True)
class Lexed:
    """A statement's significant tokens and what about its text no engine reads alike."""

    tokens: tuple[Token, ...]
    problems: tuple[str, ...]


def lex(cypher: str, keywords: frozenset[str] = frozenset()) -> Lexed:
    """Tokens of ``cypher`` (whitespace and comments dropped) and the spots the engines disagree.

    ``keywords`` (upper case) are the words a non-ASCII spelling must not imitate.
    """
    tokens: list[Token] = []
    problems: list[str] = []
    for match in _TOKEN.finditer(cypher):
        kind, text = match.lastgroup or "other", match.group()
        if kind == "space":
            continue
        if kind == "line_comment":
            _check_line_end(cypher, match.end(), problems)
        elif kind == "block_comment" and "/*" in text[2:-2]:
            problems.append("a /* comment inside a /* comment")
        elif kind in _UNTERMINATED:  # the engines read the rest as part of it: a syntax error
            problems.append(_UNTERMINATED[kind])
            break
        elif kind == "other":
            problems.append(f"the character {_describe(text)} outside a string")
        elif kind != "block_comment":
            if kind == "word" and not text.isascii():
                _check_lookalike(text, keywords, problems)
            tokens.append(Token(kind, text))
    return Lexed(tuple(tokens), tuple(dict.fromkeys(problems)))


def tokenize(cypher: str) -> list[Token]:
    """The significant tokens of ``cypher`` (whitespace and comments dropped)."""
    return list(lex(cypher).tokens)


def _check_line_end(cypher: str, end: int, problems: list[str]) -> None:
    """A ``//`` comment must end at ``\\n``, ``\\r\\n`` or the end of the text."""
    if end >= len(cypher) or cypher[end] == "\n" or cypher.startswith("\r\n", end):
        return
    problems.append(
        f"a // comment ended by {_describe(cypher[end])}, a line break the engines read differently"
    )


def _check_lookalike(word: str, keywords: frozenset[str], problems: list[str]) -> None:
    folded = unicodedata.normalize("NFKC", word).upper()
    if folded in keywords:
        problems.append(f"{word!r}, the keyword {folded} spelt with non-ASCII letters")


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


__all__ = ["LINE_BREAKS", "Lexed", "Token", "lex", "tokenize"]
