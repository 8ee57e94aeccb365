"""The ``explgraph`` command: one Typer app, one sub-app or command module per group."""

from __future__ import annotations

import importlib
import sys

import typer

from explgraph.errors import ExplGraphError
from explgraph.settings import resolve_store_spec
from explgraph.state import CliState, state

app = typer.Typer(
    name="explgraph",
    help="Mine the part patterns inside a CNN into an explanatory graph, and query it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes ``register(app)``; they are imported here, so keep their top level light.
COMMAND_MODULES: list[str] = [
    "explgraph.commands.store",
    "explgraph.commands.dataset",
    "explgraph.commands.train",
    "explgraph.commands.mine",
    "explgraph.commands.evaluate",
    "explgraph.commands.demo",
    "explgraph.commands.compare",
    "explgraph.commands.export",
    "explgraph.commands.explain",
    "explgraph.commands.diagnose",
    "explgraph.commands.aog",
    "explgraph.commands.serve",
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
) -> None:
    ctx.obj = CliState(store_spec=resolve_store_spec(store), quiet=quiet)


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_commands()


def main() -> None:
    """Console entry point: run the app, turn explgraph errors into one line and exit code 1."""
    try:
        app(standalone_mode=False)
    except ExplGraphError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as usage:  # click usage errors carry their own exit code
        import click

        if isinstance(usage, click.ClickException):
            usage.show()
            sys.exit(usage.exit_code)
        raise


__all__ = ["CliState", "app", "main", "state"]
