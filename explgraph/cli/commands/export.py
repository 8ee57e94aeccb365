"""``explgraph export MODEL``: a stored model as GraphML or node-link JSON."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from explgraph.cli.options import Force
from explgraph.cli.state import state


class ExportFormat(StrEnum):
    """File formats of ``explgraph export`` (the values of :class:`queries.export.ExportFormat`,
    repeated here so that building the CLI does not import pandas)."""

    graphml = "graphml"
    json = "json"


def export(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    fmt: ExportFormat = typer.Option(ExportFormat.graphml, "--format", "-f", help="File format."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output file (default: <model>.graphml or <model>.json)."
    ),
    force: Force = False,
) -> None:
    """Write a model's whole graph (nodes, edges, every property) to one file."""
    from explgraph.cli.outputs import check_output_file
    from queries.export import ExportFormat as LibraryFormat
    from queries.export import export_model

    target = output or Path(f"{model_id.replace('/', '_')}.{fmt.value}")
    check_output_file(target, force=force, store_spec=state(ctx).store_spec, flag="-o")
    with state(ctx).open_store(read_only=True) as store:
        summary = export_model(store, model_id, target, LibraryFormat(fmt.value))
    typer.echo(
        f"wrote {summary.path} ({fmt.value}): {summary.n_nodes} nodes, {summary.n_edges} edges"
    )


def register(app: typer.Typer) -> None:
    """Add the ``export`` command."""
    app.command("export")(export)


__all__ = ["register"]
