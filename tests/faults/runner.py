"""Start fault-suite children and read what they left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.signals import default_sigint

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment (NEO4J_* included) with the repository first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env["EXPLGRAPH_FAULT_SIGNAL"] = "KILL"  # fault points die as kill -9 does
    env.update(extra)
    return env


def run_child(
    *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m tests.faults.child ARGS`` to its end (or its kill), in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "tests.faults.child", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        cwd=cwd or ROOT,
        env=child_env(**extra),
        preexec_fn=default_sigint,  # the fault points may interrupt the child with SIGINT
    )


def explgraph(
    *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """The explgraph CLI in a child, optionally with fault variables."""
    return run_child("cli", *args, cwd=cwd, **extra)


def killed(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether the child died of SIGKILL (what ``kill -9`` does)."""
    return done.returncode == -signal.SIGKILL


def write_primitives(*args: str) -> int:
    """How many store write primitives the child ``args`` runs when nothing kills it."""
    done = run_child(*args, FAULT_KILL_WRITE="count")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("write-primitives:"))
    return int(line.split(":")[1])


def instants(count: int, wanted: int = 12) -> list[int]:
    """``wanted`` kill instants spread over 1..count (all of them when there are fewer)."""
    if count <= wanted:
        return list(range(1, count + 1))
    return sorted({1 + round(k * (count - 1) / (wanted - 1)) for k in range(wanted)})


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The child's error output, asserted to be a single line without a traceback."""
    text = done.stderr.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    return text
