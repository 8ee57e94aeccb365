"""``explgraph diagnose MODEL --annotations F``: background patterns and part-unstable patterns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from explgraph.cli.loading import annotated_records, chosen_label, open_graph
from explgraph.cli.options import CacheDir, Device, Json, Label, ModelFile, Split
from explgraph.cli.state import state
from explgraph.core.errors import InputError

if TYPE_CHECKING:
    from miner.data.records import ImageRecord
    from queries.diagnose import DiagnosisReport


def diagnose(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    annotations: Path = typer.Option(
        ..., "--annotations", help="Annotation JSON (or dataset folder) with boxes and parts."
    ),
    label: Label = None,
    split: Split = None,
    context: float = typer.Option(
        0.25, "--context", help="Grow each box by this fraction of its size on every side."
    ),
    off_limit: float = typer.Option(
        0.5, "--off-limit", help="Off-object share of firing mass above which = background."
    ),
    top_k: int = typer.Option(20, "--top-k", min=2, help="Top images per pattern (instability)."),
    no_store: bool = typer.Option(
        False, "--no-store", help="Do not write Pattern.diagnosis / off_object back."
    ),
    limit: int = typer.Option(20, "--limit", min=0, help="Flagged patterns listed."),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    as_json: Json = False,
) -> None:
    """Patterns that fire mostly off the object, or sit unstably relative to the parts."""
    from queries.diagnose import diagnose as run_diagnose
    from queries.diagnose import store_diagnosis

    cli = state(ctx)
    with cli.open_store(read_only=no_store) as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        records = _records(annotations, chosen_label(label, loaded), split)
        report = run_diagnose(
            loaded,
            records,
            context=context,
            off_limit=off_limit,
            top_k=top_k,
            progress=cli.progress,
        )
        if not no_store:
            store_diagnosis(store, report)
    if as_json:
        typer.echo(json.dumps(report.to_dict(limit), indent=2, default=str))
        return
    _print(report, limit, stored=not no_store)


def _records(annotations: Path, label: str | None, split: str | None) -> list[ImageRecord]:
    """The annotated images of ``label`` (and ``split``); one clear error when there are none."""
    records = annotated_records(annotations, label=label, split=split)
    if not records:
        raise InputError(
            f"no images with label={label!r} split={split!r} in {annotations}: "
            "check --label / --split"
        )
    return records


def _print(report: DiagnosisReport, limit: int, *, stored: bool) -> None:
    from rich.table import Table

    from explgraph.cli.console import output_console

    console = output_console()
    table = Table(
        "layer",
        "patterns",
        "background",
        "unstable",
        "mean off-object",
        "raw-filter median instability",
        title=f"representation flaws of {report.model_id} ({report.n_images} images, "
        f"context {report.context:g}, background = off-object > {report.off_limit:g})",
    )
    for row in report.per_layer():
        table.add_row(
            str(row["layer"]),
            str(row["patterns"]),
            str(row["background"]),
            str(row["unstable"]),
            f"{row['mean_off_object']:.1%}",
            f"{row['filter_baseline']:.4f}",
        )
    console.print(table)
    flagged = report.flagged(limit)
    if len(flagged):
        listing = Table("pattern", "diagnosis", "off-object", "instability")
        for row in flagged.itertuples(index=False):
            listing.add_row(
                str(row.pattern_id),
                str(row.diagnosis),
                f"{row.off_object:.1%}",
                "-" if row.instability != row.instability else f"{row.instability:.4f}",
            )
        console.print(listing)
    if stored:
        console.print(
            "verdicts stored as Pattern.diagnosis / Pattern.off_object "
            "(explgraph query diagnosed-patterns -p model=...)"
        )


def register(app: typer.Typer) -> None:
    """Add the ``diagnose`` command."""
    app.command("diagnose")(diagnose)


__all__ = ["register"]
