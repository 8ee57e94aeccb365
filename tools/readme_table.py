"""Put the demo's own stability report into README.md, between its demo-table markers.

    python tools/readme_table.py               # run the demo as the README says, then write
    python tools/readme_table.py --from FILE   # write FILE (from `explgraph demo --table-md`)

Without ``--from`` the quick start's ``explgraph demo`` runs in a fresh temporary home (its own
store and cache) on the CPU with ``OMP_NUM_THREADS`` = :data:`DEMO_THREADS` — the thread count
the README names, because the figures of the bottom layer move with it — and writes the report
it printed as Markdown (``--table-md``). ``tests/integration/test_readme.py`` runs the demo the
same way and fails when README.md differs from what it printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- demo-table:begin (tools/readme_table.py writes this block) -->"
END = "<!-- demo-table:end -->"
DEMO_THREADS = "2"


def demo_command(table: Path) -> list[str]:
    """The quick start's demo, on the CPU, writing its report as Markdown to ``table``."""
    script = shutil.which("explgraph") or str(Path(sys.executable).with_name("explgraph"))
    return [script, "--quiet", "demo", "--device", "cpu", "--table-md", str(table)]


def demo_env(home: Path) -> dict[str, str]:
    """A new user's environment: a private home, no store or cache settings, fixed threads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPLGRAPH_", "NEO4J_"))}
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    env["HOME"] = str(home)
    env["OMP_NUM_THREADS"] = DEMO_THREADS
    return env


def with_block(text: str, block: str) -> str:
    """``text`` with everything between :data:`BEGIN` and :data:`END` replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"README.md needs one {BEGIN!r} line and one {END!r} line after it")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block.strip()}\n{END}{tail}"


def run_demo(home: Path) -> str:
    """Run the demo in ``home`` and return the Markdown report it wrote."""
    table = home / "demo-table.md"
    done = subprocess.run(demo_command(table), env=demo_env(home), cwd=home, check=False)
    if done.returncode != 0:
        raise SystemExit(f"explgraph demo failed (exit {done.returncode})")
    return table.read_text()


def main() -> None:
    """Write the block into README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a --table-md file to use")
    args = parser.parse_args()
    if args.source is not None:
        block = args.source.read_text()
    else:
        with tempfile.TemporaryDirectory(prefix="readme-demo-") as home:
            block = run_demo(Path(home))
    README.write_text(with_block(README.read_text(), block))
    print(f"wrote the demo's table into {README}")


if __name__ == "__main__":
    main()
