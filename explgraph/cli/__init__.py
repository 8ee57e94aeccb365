"""The ``explgraph`` command line: the Typer app, its commands and their terminal output.

The only floor (with the web server's start-up) that reads the environment: the store address,
Neo4j credentials and default folders are resolved here and passed down as arguments.
"""

from explgraph.cli.app import EXIT_INTERRUPTED, app, hoist_global_options, main

__all__ = ["EXIT_INTERRUPTED", "app", "hoist_global_options", "main"]
