"""explgraph: mine a CNN's part patterns into an explanatory graph and query it.

The package is the house's frame: :mod:`explgraph.core` is the floor every library stands on
(errors, progress, fault points); the libraries ``miner`` (features, graph learning),
``graphstore`` (the graph database) and ``queries`` (Cypher, And-Or graphs, comparison) sit on
it; :mod:`explgraph.workflows` joins them (mine: miner → rows → store); the CLI
(:mod:`explgraph.cli`) and the web explorer (:mod:`explgraph.web`) are the top floor.
docs/architecture.md draws the floors and the arrows allowed between them.

Importing this package loads nothing else: no CLI, no torch.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"  # the one version source (pyproject reads it)
