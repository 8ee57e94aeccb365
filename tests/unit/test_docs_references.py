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


# Links and code paths in the user documentation -------------------------------------------------

DOCUMENTS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md")])
#: ``[text](target)`` and ``![alt](target)``; the target ends at whitespace or ``)``
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
#: a repository path the docs name: starts with a top-level folder of the project
_CODE_PATH = re.compile(
    r"(?<![\w./~$<-])((?:miner|graphstore|queries|explgraph|bench|tests|tools|docs|\.ci)"
    r"/[\w./*-]*[\w/*])"
)


def _prose(text: str) -> str:
    """``text`` without fenced code blocks (commands and output name scratch files, not code)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        kept.append("" if fenced else line)
    return "\n".join(kept)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file."""
    return {
        _slug(line.lstrip("#"))
        for line in _prose(path.read_text()).splitlines()
        if re.match(r"#{1,6} ", line)
    }


def links(path: Path) -> list[str]:
    """Every link target in the prose of ``path``."""
    return _LINK.findall(_prose(path.read_text()))


def test_the_slug_is_githubs() -> None:
    assert _slug("Speed at the paper's scale") == "speed-at-the-papers-scale"
    assert _slug("Interpretable CNNs (filter loss)") == "interpretable-cnns-filter-loss"
    assert _slug("Tests: where each kind lives and what it costs") == (
        "tests-where-each-kind-lives-and-what-it-costs"
    )
    assert _slug("Semantic parts from 1–3 annotations (And-Or graphs)") == (
        "semantic-parts-from-13-annotations-and-or-graphs"
    )


def test_the_link_finder_finds_links() -> None:
    text = "See [a](docs/a.md#x), ![b](img/b.png) and [c](https://x.org).\n```\n[d](no.md)\n```\n"
    assert _LINK.findall(_prose(text)) == ["docs/a.md#x", "img/b.png", "https://x.org"]


def test_every_relative_link_points_at_an_existing_file_and_heading() -> None:
    broken = []
    for path in DOCUMENTS:
        for target in links(path):
            if _EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(REPO)}: {target}"
            if not linked.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{where} (no such heading)")
    assert broken == []


def test_every_code_path_the_docs_name_exists() -> None:
    missing = []
    for path in DOCUMENTS:
        for named in set(_CODE_PATH.findall(path.read_text())):  # code blocks too
            pattern = re.sub(r"\b[A-Z]{2,}\b", "*", named)  # a placeholder: bench/NAME.py
            if not list(REPO.glob(pattern.rstrip("/"))):
                missing.append(f"{path.relative_to(REPO)}: {named}")
    assert sorted(missing) == []


def test_the_docs_name_code_paths() -> None:
    """The check above sees the paths (a regex that matched nothing would pass it)."""
    named = set(_CODE_PATH.findall((REPO / "docs" / "architecture.md").read_text()))
    assert {"graphstore/lifecycle.py", "explgraph/core/faults.py", "queries/loaded.py"} <= named
    assert "explgraph/workflows/mine/request.py" in named  # from a code block
