"""Rich progress bars on stderr: the CLI's implementation of :class:`explgraph.core.Progress`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from explgraph.core.progress import Task


class _RichTask:
    def __init__(self, bar: object, task_id: object) -> None:
        self._bar = bar
        self._task_id = task_id

    def advance(self, steps: float = 1) -> None:
        self._bar.advance(self._task_id, steps)  # type: ignore[attr-defined]


@contextmanager
def _rich_task(description: str, total: float | None) -> Iterator[Task]:
    """One rich bar on stderr, shown while the block runs."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as RichBar,
    )

    bar = RichBar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
        console=Console(stderr=True),
    )
    bar.start()
    task_id = bar.add_task(description, total=total)
    try:
        yield _RichTask(bar, task_id)
    finally:
        bar.stop()


class RichProgress:
    """Progress bars on stderr through rich."""

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Open a rich bar for ``total`` units."""
        return _rich_task(description, total)

    def log(self, message: str) -> None:
        """Print one line to stderr."""
        from explgraph.cli.console import output_console

        output_console(stderr=True).print(message, highlight=False)


__all__ = ["RichProgress"]
