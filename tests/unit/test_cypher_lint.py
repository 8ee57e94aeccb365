"""Every Cypher text sent over Bolt passes Neo4j's own parser and semantic analysis.

The statements are every canned query's Bolt text (:func:`queries.canned.canned_texts`) plus
every statement the Bolt engine sends (:func:`graphstore.testing.catalogue.all_statements`);
``tools/cypher-lint/lint.mjs`` runs Neo4j's ``@neo4j-cypher/language-support`` on them with
Node.js. Install it with
``.ci/tools/cypher-lint.sh``. Without node or the package the test skips with the reason,
except in CI (``CI=true``): then it fails (:mod:`tests.helpers.ci`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from graphstore.testing.catalogue import Statement, all_statements, named_statements
from queries.canned import canned_texts
from tests.helpers.ci import missing_tool

TOOL = Path(__file__).resolve().parents[2] / "tools" / "cypher-lint"
PACKAGE = TOOL / "node_modules" / "@neo4j-cypher" / "language-support"


def _lint(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "Node.js is not installed (apt-get install -y nodejs npm)"
    elif not PACKAGE.exists():
        missing = f"the Cypher linter is not installed: run .ci/tools/cypher-lint.sh ({PACKAGE})"
    if missing:
        missing_tool(missing)
    assert node is not None
    done = subprocess.run(
        [node, str(TOOL / "lint.mjs")],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def test_the_linter_catches_what_neo4j_rejects() -> None:
    """The check can fail: a statement only LadybugDB accepts, and an undefined variable."""
    results = _lint(
        [
            {
                "source": "ladybug-only",
                "cypher": "MATCH p = (a)-->(b) RETURN properties(nodes(p), 'x') AS xs",
                "parameters": [],
            },
            {"source": "undefined", "cypher": "MATCH (n) RETURN m", "parameters": []},
            {"source": "fine", "cypher": "MATCH (n) RETURN n.x AS x", "parameters": []},
        ]
    )
    errors = {
        r["source"]: [d for d in r["diagnostics"] if d["severity"] == "error"] for r in results
    }
    assert errors["ladybug-only"] and errors["undefined"] and not errors["fine"]


def every_bolt_statement() -> list[Statement]:
    """The canned queries' Bolt texts first, then the store format's and the loaded graph's
    statements, then the engine's own statements."""
    from graphstore import explainers, versions
    from graphstore.pack import pack_statements
    from queries.loaded import STATISTICS_QUERY

    own = named_statements(
        "store format",
        [
            ("read store version", versions.READ_STORE_VERSION),
            ("write store version", versions.WRITE_STORE_VERSION),
            ("layer statistics", STATISTICS_QUERY),
            *explainers.STATEMENTS,
        ],
    ) + named_statements("graphstore.pack", pack_statements())
    return all_statements([*named_statements("queries.canned", canned_texts("bolt")), *own])


def test_every_bolt_statement_passes_neo4j_linting() -> None:
    statements = every_bolt_statement()
    sources = {s.source.split(":")[0] for s in statements}
    assert {"queries.canned", "graphstore.bolt_engine"} <= sources
    assert len(statements) > 50  # the catalogue really enumerates the engine's statements
    results = _lint([{**asdict(s), "parameters": list(s.parameters)} for s in statements])
    failures = [
        f"{r['source']}: {d['message']} in: {r['cypher']}"
        for r in results
        for d in r["diagnostics"]
        if d["severity"] == "error"
    ]
    assert not failures, "\n".join(failures)
