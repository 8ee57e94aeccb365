"""What the global options decided for one CLI invocation, reachable from every command.

Kept apart from :mod:`explgraph.cli` so command modules can import it without importing the CLI
(which imports every command module).
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from explgraph.progress import NULL_PROGRESS, Progress, RichProgress
from explgraph.settings import resolve_store_spec


@dataclass
class CliState:
    """What the global options decided, handed to every command through the Typer context."""

    store_spec: str
    quiet: bool

    @property
    def progress(self) -> Progress:
        """Rich bars unless ``--quiet``."""
        return NULL_PROGRESS if self.quiet else RichProgress()


def state(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # called without the root callback (direct invocation)
        obj = CliState(store_spec=resolve_store_spec(None), quiet=True)
        ctx.find_root().obj = obj
    return obj


__all__ = ["CliState", "state"]
