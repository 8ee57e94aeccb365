"""Progress reporting that long-running library code can take without knowing about the CLI.

Library functions take a ``Progress`` argument (default :data:`NULL_PROGRESS`); the CLI passes
its rich bars (:class:`explgraph.cli.progress.RichProgress`) unless ``--quiet`` is given.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
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


class NullProgress:
    """Shows nothing: the default for library calls and ``--quiet``."""

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Return a bar that records nothing."""
        return nullcontext(_NullTask())

    def log(self, message: str) -> None:
        """Drop the message."""
        return None


NULL_PROGRESS: Progress = NullProgress()


class _StampTask:
    def __init__(self, stamps: list[float]) -> None:
        self._stamps = stamps

    def advance(self, steps: float = 1) -> None:
        self._stamps.append(time.perf_counter())


@contextmanager
def _stamped_task(stamps: list[float]) -> Iterator[Task]:
    """A bar stamped when it opens and each time it advances."""
    stamps.append(time.perf_counter())
    yield _StampTask(stamps)


class TimingProgress:
    """Shows nothing; records when each bar opens and each time it advances (benchmarks).

    ``bars[description]`` holds the time stamps of that bar, opening first.
    """

    def __init__(self) -> None:
        self.bars: dict[str, list[float]] = {}

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Open a bar whose advances are time-stamped."""
        return _stamped_task(self.bars.setdefault(description, []))

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
    "Task",
    "TimingProgress",
    "track",
]
