// Lint Cypher statements with Neo4j's own grammar and semantic analysis
// (@neo4j-cypher/language-support, pinned in package.json / package-lock.json).
//
// stdin:  JSON array of {"source": str, "cypher": str, "parameters": [names]}
// stdout: JSON array of {"source", "cypher", "diagnostics": [{"severity", "message", "offset"}]}
// Severity is "error" or "warning". Parameters are declared to the linter so that "$x is not
// defined" is not reported for parameters the caller binds.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
// the package's ESM build has extensionless imports that Node cannot resolve: use its CJS build
const { lintCypherQuery } = require('@neo4j-cypher/language-support');

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };
const statements = JSON.parse(readFileSync(0, 'utf8'));
const results = statements.map(({ source, cypher, parameters = [] }) => {
  const schema = { parameters: Object.fromEntries(parameters.map((name) => [name, null])) };
  const diagnostics = lintCypherQuery(cypher, schema).map((d) => ({
    severity: SEVERITY[d.severity] ?? String(d.severity),
    message: d.message,
    offset: d.offsets ? d.offsets.start : null,
  }));
  return { source, cypher, diagnostics };
});
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
