"""The kill harness: kill -9 a writer at instants chosen by watching what it does.

A writer child (``tests.faults.child``) is started; the parent polls the store folder every
half millisecond (names and sizes: the engine's WAL, frozen WAL ``.wal.checkpoint``, shadow
file, checkpoint lock files, and explgraph's writer lock, safety copy and marker) and reads the
child's marks (``MARK <monotonic time> <fault point>``, printed at each fault point it passes:
its write batches, the switch, each rename batch). A *trigger* names a file (``file:NAME@k``:
its k-th appearance) or a mark (``mark:NAME@k``); the child is sent SIGKILL ``delay`` seconds
after the trigger — inside the engine's commit or checkpoint, or inside a Bolt driver call.

:func:`calibrate` runs the write once un-killed and lists every window (a file from its
appearance to its removal, a mark to the next mark); :func:`schedule` spreads a bounded number
of instants over them, at least one per window and the rest by length.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.runner import ROOT, child_env
from tests.helpers.signals import default_sigint

POLL_S = 0.0005


@dataclass
class Run:
    """What one watched child did: file events and marks on one clock, and how it ended."""

    events: list[tuple[float, str, str, int]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    killed_at: float | None = None
    #: the files in the folder at the last poll before the kill
    at_kill: frozenset[str] = frozenset()
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    started: float = 0.0

    @property
    def killed(self) -> bool:
        """Whether the harness killed the child (it had not ended by itself)."""
        return self.killed_at is not None

    def last_mark(self) -> str:
        """The last fault point the child passed before it ended or was killed."""
        return self.marks[-1][1] if self.marks else "-"


def snapshot(folder: Path | None) -> dict[str, int]:
    """Name -> size of every entry of ``folder`` (``{}`` when there is none)."""
    if folder is None:
        return {}
    try:
        with os.scandir(folder) as entries:
            return {entry.name: _size(entry) for entry in entries}
    except FileNotFoundError:
        return {}


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat().st_size
    except FileNotFoundError:
        return -1


def start_child(*args: str, **extra: str) -> subprocess.Popen[str]:
    """``python -m tests.faults.child ARGS`` printing its marks (``FAULT_MARKS=1``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.child", *args],
        cwd=ROOT,
        env=child_env(FAULT_MARKS="1", **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def watch(
    child: subprocess.Popen[str],
    folder: Path | None,
    trigger: str | None = None,
    delay: float = 0.0,
    sig: int = signal.SIGKILL,
) -> Run:
    """Watch ``child`` (and ``folder``) until it ends, or send it ``sig`` (kill -9; SIGINT for a
    Ctrl-C) ``delay`` s after ``trigger``."""
    run = Run(started=time.monotonic())
    out: list[str] = []
    reader = threading.Thread(target=_read_marks, args=(child, run, out), daemon=True)
    reader.start()
    kind, _, target = (trigger or ":").partition(":")
    name, _, nth = target.partition("@")
    wanted, seen_count, fire_at = int(nth or 1), 0, None
    seen = snapshot(folder)
    run.events += [(run.started, "present", n, size) for n, size in seen.items()]
    while child.poll() is None:
        now = time.monotonic()
        current = snapshot(folder)
        appeared = [n for n in current if n not in seen]
        run.events += [(now, "appear", n, current[n]) for n in appeared]
        run.events += [(now, "size", n, s) for n, s in current.items() if seen.get(n, s) != s]
        run.events += [(now, "gone", n, seen[n]) for n in seen.keys() - current.keys()]
        seen = current
        if kind == "file":
            seen_count += appeared.count(name)
        elif kind == "mark":
            seen_count = sum(1 for _, mark in list(run.marks) if mark == name)
        if fire_at is None and kind and seen_count >= wanted:
            fire_at = now + delay
        if fire_at is not None and time.monotonic() >= fire_at:
            child.send_signal(sig)
            run.killed_at = time.monotonic()
            run.at_kill = frozenset(current)
            break
        time.sleep(POLL_S)
    child.wait()
    reader.join(timeout=30)
    run.returncode = child.returncode
    run.stdout = "".join(out)
    run.stderr = child.stderr.read() if child.stderr else ""
    return run


def _read_marks(child: subprocess.Popen[str], run: Run, out: list[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        out.append(line)
        if line.startswith("MARK "):
            _, stamp, name = line.split(maxsplit=2)
            run.marks.append((float(stamp), name.strip()))


def windows(run: Run, files: tuple[str, ...], marks: tuple[str, ...]) -> list[tuple[str, float]]:
    """``(trigger, length in s)`` of every appearance of ``files`` and every one of ``marks``
    (a mark's window lasts until the next mark, or the end)."""
    end = max([t for t, *_ in run.events] + [t for t, _ in run.marks] + [run.started])
    found: list[tuple[str, float, float]] = []  # trigger, start, stop
    count: dict[str, int] = {}
    opened: dict[str, int] = {}
    for t, kind, name, _ in run.events:
        if name not in files:
            continue
        if kind == "appear":
            count[name] = count.get(name, 0) + 1
            opened[name] = len(found)
            found.append((f"file:{name}@{count[name]}", t, end))
        elif kind == "gone" and name in opened:
            trigger, start, _ = found[opened.pop(name)]
            found[found.index((trigger, start, end))] = (trigger, start, t)
    times = [t for t, _ in run.marks] + [end]
    count = {}
    for i, (t, name) in enumerate(run.marks):
        count[name] = count.get(name, 0) + 1
        if name in marks:
            found.append((f"mark:{name}@{count[name]}", t, times[i + 1]))
    return [(trigger, max(stop - start, 0.0)) for trigger, start, stop in found]


def schedule(wins: list[tuple[str, float]], instants: int) -> list[tuple[str, float]]:
    """``instants`` kills, each a trigger and a delay evenly spaced inside its window: the
    longest window of each file first, then the others by length, and the kills left over
    shared by window length."""
    if not wins or instants <= 0:
        return []
    by_length = sorted(wins, key=lambda w: -w[1])
    firsts: dict[str, tuple[str, float]] = {}
    for trigger, length in by_length:
        firsts.setdefault(trigger.partition("@")[0], (trigger, length))
    chosen = list(firsts.values())[:instants]
    chosen += [w for w in by_length if w not in chosen][: instants - len(chosen)]
    total = sum(max(length, 0.001) for _, length in chosen)
    spare = instants - len(chosen)
    plan = []
    for trigger, length in chosen:
        n = 1 + round(spare * max(length, 0.001) / total)
        plan += [(trigger, round(length * i / n, 4)) for i in range(n)]
    return plan


def calibrate(*child_args: str, folder: Path | None) -> Run:
    """One un-killed, watched run of the writer (it must succeed)."""
    run = watch(start_child(*child_args), folder)
    assert run.returncode == 0, f"the un-killed write failed: {run.stderr[-800:]}"
    return run


__all__ = ["Run", "calibrate", "schedule", "snapshot", "start_child", "watch", "windows"]
