"""Benchmark the CLI's start-up: wall and CPU time of ``explgraph --help`` and ``explgraph query``.

Each command runs ``--repeats`` times as a fresh process of the installed console script (the
``explgraph`` next to this interpreter, else ``python -m explgraph``), with this checkout first on
``PYTHONPATH``. The query runs against a small synthetic store written once into a temporary
folder (no torch needed to write it). Also reports whether the child imported torch (it runs the
CLI in-process under ``-c`` and prints ``sys.modules``' verdict).

    python bench/cli_startup.py --repeats 5

Wall time on a shared machine is inflated by load; the child's CPU time (user + sys) is the
steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_PROBE = (
    "import sys\n"
    "sys.argv = ['explgraph', *{args!r}]\n"
    "from explgraph.cli import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('TORCH_IMPORTED' if 'torch' in sys.modules else 'TORCH_NOT_IMPORTED', file=sys.stderr)\n"
)


def console_script() -> list[str]:
    """The installed ``explgraph`` script next to this interpreter, else ``python -m explgraph``."""
    script = Path(sys.executable).with_name("explgraph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "explgraph"]


def child_env() -> dict[str, str]:
    """The environment with this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def write_store(folder: Path) -> str:
    """A small synthetic model ``bench`` in an embedded store; returns the store folder."""
    from graphstore import open_store
    from graphstore.testing.synthetic import LayerShape, synthetic_records

    spec = str(folder / "store")
    layers = (LayerShape("low", 8, 8.0, 4), LayerShape("high", 4, 16.0, 2))
    records = synthetic_records("bench", channels=16, layers=layers, n_images=50)
    with open_store(spec) as store:
        store.write_model(records)
    return spec


def timed(command: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and child CPU seconds of ``repeats`` runs of ``command`` (each must exit 0)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return walls, cpus


def imports_torch(args: list[str]) -> bool:
    """Whether running the CLI in-process with ``args`` leaves torch in ``sys.modules``."""
    probe = TORCH_PROBE.format(args=args)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=child_env(), check=False
    )
    return "TORCH_IMPORTED" in done.stderr.splitlines()[-1:][0] if done.stderr else True


def main() -> None:
    """Print wall / CPU medians and the torch verdict for each command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="explgraph-cli-bench-") as tmp:
        store = write_store(Path(tmp))
        cases = {
            "explgraph --help": ["--help"],
            "explgraph query (canned, 10 rows)": [
                "--store",
                store,
                "query",
                "MATCH (p:Pattern) RETURN p.pattern_id AS id ORDER BY id LIMIT 10",
            ],
        }
        print(f"{'command':<36} {'wall median':>12} {'wall min':>9} {'cpu median':>11}  torch")
        for name, cli_args in cases.items():
            walls, cpus = timed([*console_script(), *cli_args], args.repeats)
            verdict = "imported" if imports_torch(cli_args) else "not imported"
            print(
                f"{name:<36} {statistics.median(walls):>10.2f} s {min(walls):>7.2f} s "
                f"{statistics.median(cpus):>9.2f} s  {verdict}"
            )


if __name__ == "__main__":
    main()
