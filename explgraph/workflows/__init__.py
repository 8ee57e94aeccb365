"""Workflows: the floor that joins the libraries (``miner`` → rows → ``graphstore``).

Each workflow takes its settings as arguments and reports through a
:class:`explgraph.core.Progress`; the CLI and the web explorer call them.
"""
