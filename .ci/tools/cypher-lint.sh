#!/usr/bin/env bash
# Install the Cypher linter (tools/cypher-lint): Neo4j's @neo4j-cypher/language-support, pinned by
# package-lock.json. Idempotent: does nothing when node_modules already matches the lock file.
# Needs Node.js >= 18 and npm (Debian: apt-get install -y nodejs npm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tool="$here/tools/cypher-lint"
command -v node >/dev/null || { echo "cypher-lint: node is not installed (apt-get install -y nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "cypher-lint: npm is not installed (apt-get install -y npm)" >&2; exit 1; }
stamp="$tool/node_modules/.explgraph-lock.sha256"
want="$(sha256sum "$tool/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "cypher-lint: already installed"
    exit 0
fi
(cd "$tool" && npm ci --no-audit --no-fund)
echo "$want" > "$stamp"
echo "cypher-lint: installed in $tool/node_modules"
