"""What the explorer's Cypher console refuses on top of the read-only store handle.

A read-only handle stops changes to the graph, but both engines have clauses that reach the
server's file system from a read query: LadybugDB's ``LOAD FROM`` reads any file the server can
read, and its ``COPY ... TO`` and ``EXPORT DATABASE`` write files even on a read-only database;
Neo4j's ``LOAD CSV`` reads files and URLs. From a web page those are a file-read and a
file-write primitive. The console asks the store's own statement classifier
(:mod:`graphstore.statements`, the one read-only policy of the project) and refuses, before the
engine sees it, every statement with a clause that reaches beyond the graph (files,
extensions, other databases, transactions, procedures not known to read), every statement
that would change the graph (the read-only handle would refuse it too), and text the policy
cannot read as the engines do (a comment ended by a line break only one engine knows). Requests
that run user Cypher or start work must also come from the explorer's own pages
(:func:`same_origin`), so another web site cannot make a browser run them.
"""

from __future__ import annotations

from starlette.requests import Request

from explgraph.core.errors import QuerySyntaxError, ReadOnlyViolation
from graphstore.statements import classify


def check_console_statement(cypher: str) -> None:
    """Refuse, before the engine sees it, a statement the read-only policy does not pass.

    The policy is the store's (:func:`graphstore.statements.classify`); the console only words
    the refusal for a web page.

    Raises:
        ReadOnlyViolation: a clause that reaches beyond the graph (files, extensions,
            databases, procedures: :attr:`~graphstore.statements.Classification.beyond_the_graph`),
            or one that changes the graph.
        QuerySyntaxError: text the policy cannot read as the engines do (a ``(`` never
            closed, a comment ended by a line break only one engine knows ...).
    """
    found = classify(cypher)
    beyond = found.beyond_the_graph
    clauses = [what for what in beyond if what in found.refused]
    if clauses:
        raise ReadOnlyViolation(
            f"the explorer's console does not run {clauses[0]}: it reaches files, databases or "
            "procedures on the server. Query the graph with MATCH ... RETURN"
        )
    if beyond:  # what the policy found in the text, not a clause
        raise QuerySyntaxError(
            f"the console cannot run this statement: it has {beyond[0]}; check the Cypher"
        )
    if found.refused:
        raise ReadOnlyViolation(
            f"the explorer only reads the store, and {found.refused[0]} changes it: run the "
            "statement with `explgraph query` and pass --write if you mean it"
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
