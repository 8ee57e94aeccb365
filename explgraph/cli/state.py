"""What the global options decided for one CLI invocation, reachable from every command.

Kept apart from :mod:`explgraph.cli.app` so command modules can import it without importing the
app (which imports every command module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from explgraph.cli.environment import StoreChoice, choose_store, store_settings
from explgraph.cli.progress import RichProgress
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore.settings import StoreSettings

if TYPE_CHECKING:
    from graphstore import GraphStore


@dataclass
class CliState:
    """What the global options decided, handed to every command through the Typer context."""

    store: StoreChoice
    quiet: bool
    store_settings: StoreSettings = field(default_factory=store_settings)

    @property
    def store_spec(self) -> str:
        """The store's address: an embedded store folder or a Bolt URI."""
        return self.store.spec

    @property
    def progress(self) -> Progress:
        """Rich bars unless ``--quiet``."""
        return NULL_PROGRESS if self.quiet else RichProgress()

    def open_store(self, *, read_only: bool = False, create: bool = True) -> GraphStore:
        """Open the chosen store with the environment's credentials."""
        from graphstore import open_store

        self.store.check()
        return open_store(
            self.store.spec, read_only=read_only, create=create, settings=self.store_settings
        )


def state(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # called without the root callback (direct invocation)
        obj = CliState(store=choose_store(None), quiet=True)
        ctx.find_root().obj = obj
    return obj


__all__ = ["CliState", "state"]
