"""Progress reporting that long-running library code can take without knowing about the CLI.

Library functions take a ``Progress`` argument (default :data:`NULL_PROGRESS`); the CLI passes
a :class:`RichProgress` unless ``--quiet`` is given.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol, TypeVar

T = TypeVar("T")


class Task(Protocol):
    """One progress bar: advance it as work gets done."""

    def advance(self, steps: float = 1) -> None:
        """Record ``steps`` more units of finished work."""


class Progress(Protocol):
    """Something that can show progress bars."""

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Open a bar for ``total`` units of work (``None`` if unknown); close it on exit."""

    def log(self, message: str) -> None:
        """Print one status line (nothing when quiet)."""


class _NullTask:
    def advance(self, steps: float = 1) -> None:
        return None


class _NullTaskContext(AbstractContextManager[Task]):
    def __enter__(self) -> Task:
        return _NullTask()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class NullProgress:
    """Shows nothing: the default for library calls and ``--quiet``."""

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Return a bar that records nothing."""
        return _NullTaskContext()

    def log(self, message: str) -> None:
        """Drop the message."""
        return None


NULL_PROGRESS: Progress = NullProgress()


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
        from explgraph.console import output_console

        output_console(stderr=True).print(message, highlight=False)


class _StampTask:
    def __init__(self, stamps: list[float]) -> None:
        self._stamps = stamps

    def advance(self, steps: float = 1) -> None:
        self._stamps.append(time.perf_counter())


class _StampTaskContext(AbstractContextManager[Task]):
    def __init__(self, stamps: list[float]) -> None:
        self._stamps = stamps

    def __enter__(self) -> Task:
        self._stamps.append(time.perf_counter())
        return _StampTask(self._stamps)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class TimingProgress:
    """Shows nothing; records when each bar opens and each time it advances (benchmarks).

    ``bars[description]`` holds the time stamps of that bar, opening first.
    """

    def __init__(self) -> None:
        self.bars: dict[str, list[float]] = {}

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Open a bar whose advances are time-stamped."""
        return _StampTaskContext(self.bars.setdefault(description, []))

    def log(self, message: str) -> None:
        """Drop the message."""
        return None

    def mean_step(self, description: str) -> float:
        """Mean seconds between consecutive stamps of one bar (one EM iteration for learning)."""
        stamps = self.bars.get(description, [])
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        return sum(steps) / max(len(steps), 1)


def track(progress: Progress, items: Iterable[T], description: str, total: int) -> Iterator[T]:
    """Iterate over ``items`` while advancing one bar per item."""
    with progress.task(description, total) as bar:
        for item in items:
            yield item
            bar.advance()


__all__ = [
    "NULL_PROGRESS",
    "NullProgress",
    "Progress",
    "RichProgress",
    "Task",
    "TimingProgress",
    "track",
]
