"""Run the ``explgraph`` command in this process, the way the console script runs it.

:func:`run_cli` goes through :func:`explgraph.cli.main`, the console entry point, so a test sees
what a user sees: the exit code ``main`` chooses and the one ``error: ...`` line it prints for an
explgraph error (Typer's ``CliRunner.invoke(app)`` would hand back the raw exception instead).
Standard input, output and error are swapped for buffers while it runs (Click's test isolation),
so no ``capsys`` is needed. A subprocess run of the installed script is
``tests/integration/test_console_script.py``'s job.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner


@dataclass(frozen=True)
class CliResult:
    """What one run printed and how it ended."""

    exit_code: int
    stdout: str
    stderr: str
    output: str  # both streams, interleaved as written

    @property
    def error_line(self) -> str:
        """The one ``error: ...`` line an explgraph error prints on stderr.

        Fails when stderr holds anything else: more lines, a traceback, or the line ``main``
        prints for an exception that is not an explgraph error (``error: unexpected ...``).
        """
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"not one line on stderr:\n{self.stderr}"
        assert lines[0].startswith("error: ") and not lines[0].startswith("error: unexpected "), (
            lines[0]
        )
        return lines[0]


def console_script() -> Path:
    """The ``explgraph`` script installed next to this interpreter (for subprocess tests).

    Fails the test when there is none: the README's own install command puts it there.
    """
    import pytest

    script = Path(sys.executable).with_name("explgraph")
    if not script.exists():
        pytest.fail(f"no explgraph console script next to {sys.executable}: pip install -e .")
    return script


def run_cli(
    *args: str | Path,
    store: str | Path | None = None,
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    quiet: bool = False,
    expect: int | None = 0,
) -> CliResult:
    """``explgraph [--quiet] [--store STORE] ARGS`` through the console entry point.

    Args:
        args: the command line after ``explgraph``.
        store: passed as the global ``--store`` option when given.
        env: variables set (a value of ``None`` unsets one) while the command runs.
        input: what the command reads from standard input (answers to prompts).
        quiet: add ``--quiet`` (no progress bars or status lines).
        expect: the exit code the run must end with (the assertion shows the output);
            ``None`` accepts any.
    """
    from explgraph.cli import main

    argv = [*(["--quiet"] if quiet else []), *(["--store", str(store)] if store else [])]
    argv += [str(arg) for arg in args]
    code = 0
    with CliRunner().isolation(input=input, env=env) as (stdout, stderr, output):
        try:
            main(argv)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            sys.stdout.flush()  # the isolation's text wrappers buffer until flushed
            sys.stderr.flush()
        result = CliResult(
            code, stdout.getvalue().decode(), stderr.getvalue().decode(), output.getvalue().decode()
        )
    if expect is not None:
        assert result.exit_code == expect, (
            f"explgraph {' '.join(argv)} exited {result.exit_code}, not {expect}:\n{result.output}"
        )
    return result


__all__ = ["CliResult", "console_script", "run_cli"]
