"""Every ``method.md`` reference in the code and README names ``docs/method.md``, which exists,
and every section it cites (``§4``, ``§7.3``, ``§3-5``) is a heading there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
METHOD = REPO / "docs" / "method.md"
SOURCES = ("explgraph", "miner", "graphstore", "queries", "bench", "tests")
_CITE = re.compile(r"(?<![\w/])(docs/)?method\.md((?:\s*§\s*[\d.]+(?:\s*[-–]\s*[\d.]+)?)?)")


def cited_files() -> list[Path]:
    files = [REPO / "README.md"]
    for folder in SOURCES:
        files += sorted((REPO / folder).rglob("*.py"))
    return [path for path in files if path != Path(__file__).resolve()]


def headings() -> set[str]:
    found = set()
    for line in METHOD.read_text().splitlines():
        match = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if match:
            found.add(match.group(1))
    return found


def test_every_reference_names_docs_method_md() -> None:
    assert METHOD.is_file()
    bare = [
        f"{path.relative_to(REPO)}:{number}"
        for path in cited_files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in _CITE.finditer(line)
        if not match.group(1)
    ]
    assert bare == [], "write docs/method.md: " + ", ".join(bare)


def test_cited_sections_exist() -> None:
    known = headings()
    assert {"1", "4", "5.3", "7.1", "7.3", "8"} <= known
    missing = []
    for path in cited_files():
        for match in _CITE.finditer(path.read_text()):
            for section in re.findall(r"\d+(?:\.\d+)?", match.group(2)):
                if section not in known and section.split(".")[0] not in known:
                    missing.append(f"{path.relative_to(REPO)}: §{section}")
    assert missing == []
