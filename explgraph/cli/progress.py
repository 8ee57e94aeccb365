"""Rich progress bars on stderr: the CLI's implementation of :class:`explgraph.core.Progress`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from explgraph.core.progress import Task


class _RichTask:
    def __init__(self, bar: object, task_id: object) -> None:
        self._bar = bar
        self._task_id = task_id

    def advance(self, steps: float = 1) -> None:
        self._bar.advance(self._task_id, steps)  # type: ignore[attr-defined]


class _RichTaskContext(AbstractContextManager[Task]):
    def __init__(self, description: str, total: float | None) -> None:
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

        self._bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
            console=Console(stderr=True),
        )
        self._description = description
        self._total = total

    def __enter__(self) -> Task:
        self._bar.start()
        task_id = self._bar.add_task(self._description, total=self._total)
        return _RichTask(self._bar, task_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()


class RichProgress:
    """Progress bars on stderr through rich."""

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Open a rich bar for ``total`` units."""
        return _RichTaskContext(description, total)

    def log(self, message: str) -> None:
        """Print one line to stderr."""
        from explgraph.cli.console import output_console

        output_console(stderr=True).print(message, highlight=False)


__all__ = ["RichProgress"]
