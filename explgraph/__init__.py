"""explgraph: mine a CNN's part patterns into an explanatory graph and query it.

The package itself holds only the CLI, the settings and the small pieces every
library shares (the error tree, progress reporting). The work is done by the
sibling libraries: ``miner`` (features, graph learning), ``graphstore`` (the
graph database) and ``queries`` (Cypher, And-Or graphs, comparison).
"""

from explgraph.errors import ExplGraphError

__all__ = ["ExplGraphError", "__version__"]
__version__ = "0.1.0"  # the one version source (pyproject reads it)
