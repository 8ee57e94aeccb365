"""``python -m explgraph`` runs the CLI."""

from explgraph.cli import main

main()
