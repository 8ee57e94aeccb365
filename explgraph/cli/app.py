"""The ``explgraph`` command: one Typer app, one sub-app or command module per group.

Exit codes of the console entry point (:func:`main`):

====  ===========================================================================================
0     success; also ``--help`` and ``--version``
1     an explgraph error (one line, ``error: ...``), an unexpected error (one line naming the
      exception, ``--debug`` shows the traceback), or a declined confirmation (``aborted``)
2     a usage mistake (unknown command or option, missing argument, bad value): click's usage
      line and one line saying what is wrong; bare ``explgraph`` prints the help and exits 2
130   interrupted (Ctrl-C); a model being mined is left ``mining`` and a re-run resumes it
====  ===========================================================================================

Global options (``--store``, ``--quiet``/``-q``, ``--verbose``/``-v``, ``--debug``) may stand
before or after the subcommand: ``explgraph demo --store X`` is ``explgraph --store X demo``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from explgraph import __version__
from explgraph.cli.environment import choose_store
from explgraph.cli.state import CliState, state
from explgraph.core.diskspace import is_no_space, no_space_message
from explgraph.core.errors import ExplGraphError, caused_by_interrupt

#: global flags and valued options that may appear anywhere before ``--``
GLOBAL_FLAGS = ("--quiet", "-q", "--debug", "--verbose", "-v")
#: the loggers of the libraries, shown on stderr with --verbose (INFO) or --debug (DEBUG)
LIBRARY_LOGGERS = ("explgraph", "miner", "graphstore", "queries")
GLOBAL_VALUED = ("--store",)
#: exit code of an interrupted run (128 + SIGINT, what shells report for Ctrl-C)
EXIT_INTERRUPTED = 130


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """``args`` with the global options moved to the front, in their order; ``--`` ends the scan.

    Example:
        >>> hoist_global_options(["demo", "--n", "8", "--store", "s", "-q"])
        ['--store', 's', '-q', 'demo', '--n', '8']
    """
    hoisted: list[str] = []
    rest: list[str] = []
    tokens = iter(enumerate(args))
    for index, token in tokens:
        if token == "--":
            rest.extend(args[index:])
            break
        if token in GLOBAL_FLAGS or token.startswith(tuple(f"{o}=" for o in GLOBAL_VALUED)):
            hoisted.append(token)
        elif token in GLOBAL_VALUED:
            hoisted.append(token)
            following = next(tokens, None)
            if following is not None:
                hoisted.append(following[1])
        else:
            rest.append(token)
    return hoisted + rest


def _commands(command: Any) -> Iterator[Any]:
    """``command`` and every command below it."""
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _commands(sub)


def _flags_without_type_label(command: Any) -> None:
    """Typer 0.29 labels every flag ``<bool>`` in the help, which reads as if the flag took a
    value (``--quiet -q <bool>``); an empty metavar leaves the type column empty for flags."""
    for each in _commands(command):
        help_option = each.get_help_option(each.context_class(each))
        for param in [*each.params, help_option]:
            if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""


class GlobalOptionsGroup(TyperGroup):
    """The root group: global options are accepted anywhere, flags have no type label."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _flags_without_type_label(self)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        """Parse with the global options moved in front of the subcommand."""
        return super().parse_args(ctx, hoist_global_options(args))


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"explgraph {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="explgraph",
    cls=GlobalOptionsGroup,
    help="Mine the part patterns inside a CNN into an explanatory graph, and query it.\n\n"
    "The method is written up in docs/method.md. Global options may also follow the command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes ``register(app)``; they are imported here, so their top level must stay
# light: no torch, no pandas (tests/unit/test_cli_startup.py holds them to it).
COMMAND_MODULES: list[str] = [
    "explgraph.cli.commands.store",
    "explgraph.cli.commands.dataset",
    "explgraph.cli.commands.train",
    "explgraph.cli.commands.mine",
    "explgraph.cli.commands.evaluate",
    "explgraph.cli.commands.demo",
    "explgraph.cli.commands.compare",
    "explgraph.cli.commands.export",
    "explgraph.cli.commands.explain",
    "explgraph.cli.commands.diagnose",
    "explgraph.cli.commands.aog",
    "explgraph.cli.commands.serve",
    "explgraph.cli.commands.explain_net",
]


@app.callback()
def _global_options(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None,
        "--store",
        envvar="EXPLGRAPH_STORE",
        help="Embedded store folder, or a Bolt URI (bolt://, neo4j://, neo4j+s://). "
        "Credentials come from NEO4J_USERNAME / NEO4J_PASSWORD / NEO4J_DATABASE.",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or status lines."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show what the libraries log (INFO and above)."
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="EXPLGRAPH_DEBUG",
        help="Show the traceback of unexpected errors, and every library log line (DEBUG).",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        expose_value=True,
        help="Print the version and exit.",
    ),
) -> None:
    ctx.obj = CliState(store=choose_store(store), quiet=quiet)
    if verbose or debug:
        _show_library_logs(logging.DEBUG if debug else logging.INFO)
    else:
        _show_store_warnings()
        # the Bolt driver logs what it also raises (and, after Ctrl-C, a defunct connection)
        driver_log = logging.getLogger("neo4j")
        if not driver_log.handlers:
            driver_log.addHandler(logging.NullHandler())


def _show_library_logs(level: int) -> None:
    """Send the libraries' log records at ``level`` and above to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(getattr(h, "explgraph_cli", False) for h in logger.handlers):
            handler.explgraph_cli = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


def _show_store_warnings() -> None:
    """The store's warnings (an interrupted write undone when it was opened, a torn log
    dropped) always reach stderr, one ``warning: …`` line each."""
    logger = logging.getLogger("graphstore")
    if any(getattr(h, "explgraph_cli", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.explgraph_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_commands()


def _debug_requested(args: list[str]) -> bool:
    """``--debug`` anywhere before ``--``, or ``EXPLGRAPH_DEBUG`` set to a true value."""
    options = args[: args.index("--")] if "--" in args else args
    env = os.environ.get("EXPLGRAPH_DEBUG", "").lower() in ("1", "true", "yes", "on")
    return "--debug" in options or env


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(message, err=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point: run the app and turn every way it can end into one exit code.

    See the module docstring for the codes. Nothing but ``--debug`` prints a traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    try:
        outcome = app(args=args, prog_name="explgraph", standalone_mode=False)
    except ExplGraphError as error:
        if debug:
            traceback.print_exc()
        if caused_by_interrupt(error):  # a clean-up after Ctrl-C failed: still Ctrl-C
            _fail("interrupted", EXIT_INTERRUPTED)
        _fail(f"error: {error}", 1)
    except typer.Exit as done:  # raised before click's own handling (eager options)
        if done.exit_code == EXIT_INTERRUPTED and caused_by_interrupt(done):
            _fail("interrupted", EXIT_INTERRUPTED)
        sys.exit(done.exit_code)
    except typer.Abort as aborted:
        if caused_by_interrupt(aborted):
            _fail("interrupted", EXIT_INTERRUPTED)
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except typer.TyperException as usage:  # click's exceptions, vendored by typer >= 0.29
        show = getattr(usage, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {usage.format_message()}", err=True)
        sys.exit(int(getattr(usage, "exit_code", 1)))
    except Exception as unexpected:
        if debug:
            traceback.print_exc()
            sys.exit(1)
        if is_no_space(unexpected):  # a full disk met where no library said so itself
            name = getattr(unexpected, "filename", None)
            _fail(f"error: {no_space_message(Path(name).parent if name else Path.cwd())}", 1)
        detail = str(unexpected).strip().splitlines()
        said = f": {detail[0]}" if detail else ""
        _fail(
            f"error: unexpected {type(unexpected).__name__}{said} "
            "(run with --debug for the traceback)",
            1,
        )
    # Under standalone_mode=False typer returns the exit code of a typer.Exit instead of raising
    # it, and turns Ctrl-C into Exit(130): both arrive here as an int.
    if isinstance(outcome, int) and not isinstance(outcome, bool):
        if outcome == EXIT_INTERRUPTED:
            _fail("interrupted", EXIT_INTERRUPTED)
        sys.exit(outcome)
    sys.exit(0)


__all__ = ["EXIT_INTERRUPTED", "CliState", "app", "hoist_global_options", "main", "state"]
