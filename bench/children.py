"""What the benchmarks that measure in child processes share: a child runs the same script with
``--child`` (so each measurement has its own peak memory) and prints its result as the last
line of its stdout, one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(
    script: str, args: Sequence[str], *, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT --child ARGS`` offline (``EXPLGRAPH_OFFLINE=1``), its output captured."""
    return subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "EXPLGRAPH_OFFLINE": "1"},
    )


def child_result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """A finished child's result: the last line of its stdout, read as JSON."""
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
