"""What the explorer's Cypher console refuses on top of the read-only store handle.

A read-only handle stops changes to the graph, but both engines have clauses that reach the
server's file system from a read query: LadybugDB's ``LOAD FROM`` reads any file the server can
read, and its ``COPY ... TO`` and ``EXPORT DATABASE`` write files even on a read-only database;
Neo4j's ``LOAD CSV`` reads files and URLs. From a web page those are a file-read and a
file-write primitive. The console asks the store's own statement classifier
(:mod:`graphstore.statements`, the one read-only policy of the project) and refuses, before the
engine sees it, every statement with a clause that reaches beyond the graph (files,
extensions, other databases, transactions, procedures not known to read); statements that
would change the graph are refused by the store's read-only enforcement itself. Requests that
run user Cypher or start work must also come from the explorer's own pages
(:func:`same_origin`), so another web site cannot make a browser run them.
"""

from __future__ import annotations

from starlette.requests import Request

from explgraph.core.errors import ReadOnlyViolation
from graphstore.statements import classify


def check_console_statement(cypher: str) -> None:
    """Refuse a statement with a file, extension, database or procedure clause.

    Raises:
        ReadOnlyViolation: the classifier finds a clause that reaches beyond the graph
            (:attr:`graphstore.statements.Classification.beyond_the_graph`).
    """
    beyond = classify(cypher).beyond_the_graph
    if beyond:
        raise ReadOnlyViolation(
            f"the explorer's console does not run {beyond[0]}: it reaches files, databases or "
            "procedures on the server. Query the graph with MATCH ... RETURN"
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


__all__ = ["check_console_statement", "same_origin"]
