"""The docs test: every shell and Python example in the README and in docs/ runs, as written.

The fenced ``bash``/``sh``/``shell``/``console`` and ``python`` blocks are found by parsing the
files, so a section added later is covered without touching this test. They run in one scratch
folder, as a new user would after the quick start, in this order (:func:`documents`):

1. ``README.md`` (its "What you can do" examples make the data, the CNN and the models the
   guide uses);
2. ``docs/guide.md`` (the user guide: every command, continuing from the README's examples);
3. every other page of ``docs/``, by file name.

The scratch folder has a private ``HOME`` (so the default store and cache are the ones the docs
name), the installed ``explgraph`` script first on ``PATH`` and this checkout first on
``PYTHONPATH``. The demo store is made first by ``explgraph demo`` (with fewer EM iterations, so
the test takes minutes, not a quarter hour). ``CONTRIBUTING.md`` is not run: its commands set up
a checkout and run this very suite.

Not run:

- blocks right after ``<!-- quickstart:... -->``: CI runs those (venv + pip install);
- blocks right after ``<!-- readme-test: skip REASON -->``: examples that need what a test
  machine lacks (a dataset download, a Docker engine, tens of minutes). The list must stay short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
GUIDE = DOCS / "guide.md"
SHELLS = {"bash", "sh", "shell", "console"}
MAX_SKIPPED = 6  # external data, Docker, retraining, a server, two long benchmarks
DEMO_ITERATIONS = "1"  # the demo's default is 10; the examples only need a mined graph

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*(quickstart:[\w-]+|readme-test:\s*skip\s*(.*?))\s*-->\s*$")


def documents() -> list[Path]:
    """The files whose examples run, in the order they run: the README, the user guide (which
    continues from the README's examples), then every other page of docs/ by name."""
    others = sorted(path for path in DOCS.glob("*.md") if path != GUIDE)
    return [README, GUIDE, *others]


@dataclass(frozen=True)
class Example:
    """One fenced code block of a document."""

    document: str  # path relative to the repository
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    marker: str | None  # the HTML comment right above the fence, if any
    skip_reason: str | None


def readme_examples(text: str, document: str = "README.md") -> list[Example]:
    """Every fenced block with a language in ``text``, with the marker comment right above it."""
    lines = text.splitlines()
    examples: list[Example] = []
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if not opened or not opened.group(1):
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        above = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marked = _MARKER.match(above.strip())
        marker = marked.group(1) if marked else None
        skip = None
        if marked and marker and marker.startswith("readme-test"):
            skip = (marked.group(2) or "").strip()
        code = "\n".join(body) + "\n"
        examples.append(Example(document, start + 1, opened.group(1).lower(), code, marker, skip))
        index += 1
    return examples


def docs_examples() -> list[Example]:
    """Every fenced block of every document, in the order the documents run."""
    return [
        example
        for path in documents()
        for example in readme_examples(path.read_text(), path.relative_to(REPO).as_posix())
    ]


def runnable(examples: list[Example]) -> list[Example]:
    """The shell and Python examples that are neither CI's nor marked to skip."""
    return [
        e
        for e in examples
        if e.language in SHELLS | {"python"} and e.marker is None and e.skip_reason is None
    ]


def test_parser_finds_blocks_and_markers() -> None:
    text = (
        "<!-- quickstart:demo -->\n```bash\npip install\n```\n\n"
        "<!-- readme-test: skip needs CUB -->\n```bash\nexplgraph mine vgg16\n```\n"
        "```python\nprint(1)\n```\n```text\n$ out\n```\n```\nplain\n```\n"
    )
    found = readme_examples(text)
    assert [(e.language, e.marker is not None, e.skip_reason) for e in found] == [
        ("bash", True, None),
        ("bash", True, "needs CUB"),
        ("python", False, None),
        ("text", False, None),
    ]
    assert [e.code for e in runnable(found)] == ["print(1)\n"]


def test_the_documents_run_readme_then_guide_then_the_rest() -> None:
    order = [path.relative_to(REPO).as_posix() for path in documents()]
    assert order[:2] == ["README.md", "docs/guide.md"]
    assert sorted(order[2:]) == order[2:]
    assert set(order[2:]) == {p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md")} - {
        "docs/guide.md"
    }


def test_the_skip_list_is_short_and_says_why() -> None:
    examples = docs_examples()
    skipped = [e for e in examples if e.skip_reason is not None]
    assert len(skipped) <= MAX_SKIPPED, [f"{e.document}:{e.line}" for e in skipped]
    assert all(len(e.skip_reason or "") >= 10 for e in skipped), "say why an example is skipped"
    assert len(runnable(readme_examples(README.read_text()))) >= 5
    assert len(runnable(readme_examples(GUIDE.read_text(), "docs/guide.md"))) >= 5


def console_bin() -> Path:
    """The folder of the installed ``explgraph`` script (next to this interpreter)."""
    folder = Path(sys.executable).parent
    if not (folder / "explgraph").exists():
        reason = f"no explgraph console script next to {sys.executable}: pip install -e ."
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A scratch folder and a new user's environment in which ``explgraph demo`` has run."""
    home = tmp_path_factory.mktemp("readme-home")
    work = home / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPLGRAPH_", "NEO4J_"))}
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(console_bin()), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    demo = subprocess.run(
        ["explgraph", "--quiet", "demo", "--iterations", DEMO_ITERATIONS, "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=1800,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    return work, env


EXAMPLES = runnable(docs_examples())


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first case also runs the demo: minutes on a busy 2-core machine
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.document}:{e.line}" for e in EXAMPLES])
def test_readme_example_runs_as_written(
    example: Example, sandbox: tuple[Path, dict[str, str]]
) -> None:
    work, env = sandbox
    if example.language == "python":
        command = [sys.executable, "-c", example.code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", example.code]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=work, timeout=1800, check=False
    )
    assert done.returncode == 0, (
        f"{example.document} line {example.line} failed (exit {done.returncode}):\n{example.code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr
