"""Print one of the README's quick-start commands, so CI runs exactly what users run.

The README marks them with ``<!-- quickstart:NAME -->`` on the line before a fenced block.
"""

import sys
from pathlib import Path


def readme_command(name: str) -> str:
    lines = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text().splitlines()
    marker = f"<!-- quickstart:{name} -->"
    start = lines.index(marker)
    fence = start + 1
    if not lines[fence].startswith("```"):
        raise SystemExit(f"README: no fenced block after {marker}")
    body = []
    for line in lines[fence + 1 :]:
        if line.startswith("```"):
            break
        body.append(line)
    return " ".join(part.rstrip("\\").strip() for part in body if part.strip())


if __name__ == "__main__":
    print(readme_command(sys.argv[1]))
