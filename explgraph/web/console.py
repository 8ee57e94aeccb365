"""What the explorer's Cypher console refuses on top of the read-only store handle.

A read-only handle stops changes to the store, but both engines have clauses that reach the
server's file system from a read query: LadybugDB's ``LOAD FROM`` reads any file the server can
read, and its ``COPY ... TO`` and ``EXPORT DATABASE`` write files even on a read-only database
(checked on LadybugDB here); Neo4j's ``LOAD CSV`` reads files and URLs. From a web page those
are a file-read and a file-write primitive, so the console refuses every statement that uses a
file or extension clause, wherever it appears outside string literals and comments. This is a
deny-list in front of the engine's read-only enforcement, not a replacement for it. Requests
that run user Cypher or start work must also come from the explorer's own pages
(:func:`same_origin`), so another web site cannot make a browser run them.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from explgraph.core.errors import ReadOnlyViolation

#: clause keywords that read or write files, load extensions or open other databases
FILE_CLAUSES = ("COPY", "LOAD", "EXPORT", "IMPORT", "INSTALL", "ATTACH", "DETACH DATABASE", "USE")
_LITERALS = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.DOTALL
)
_CLAUSE = re.compile(
    r"\b(" + "|".join(c.replace(" ", r"\s+") for c in FILE_CLAUSES) + r")\b", re.IGNORECASE
)


def check_console_statement(cypher: str) -> None:
    """Refuse a statement with a file, extension or database clause.

    Raises:
        ReadOnlyViolation: the statement uses one of :data:`FILE_CLAUSES`.
    """
    found = _CLAUSE.search(_LITERALS.sub(" ", cypher))
    if found:
        clause = " ".join(found.group(1).upper().split())
        raise ReadOnlyViolation(
            f"the explorer's console does not run {clause}: it reads or writes files or "
            "databases on the server. Query the graph with MATCH ... RETURN"
        )


def same_origin(request: Request) -> bool:
    """False when a browser says the request comes from another site.

    Browsers send ``Sec-Fetch-Site`` (``cross-site`` when another site's page made the
    request) and, on form posts, ``Origin``; clients that send neither (curl, scripts) pass.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":  # a privacy-restricted origin: trust only the browser's own verdict
        return site == "same-origin"
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


__all__ = ["FILE_CLAUSES", "check_console_statement", "same_origin"]
