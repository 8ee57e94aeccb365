"""Store commands: ``store info``, ``store repair``, ``models``, ``query`` and ``delete``.

``query`` runs user Cypher, or a canned query of :mod:`queries.canned` given by name (listed by
``query --list``), read-only unless ``--write`` is given: the statement is classified before it
runs (:mod:`graphstore.statements`) and then runs on a read-only handle or READ transaction.
Its building blocks (:func:`render_rows`, :func:`run_query`, :func:`run_named`) are public so
that other commands can reuse them; ``-p`` values are read by :func:`queries.canned.parse_params`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from explgraph.cli.options import CacheDir, Device
from explgraph.cli.state import state

store_app = typer.Typer(help="The graph store itself.", no_args_is_help=True)


class OutputFormat(StrEnum):
    """How ``explgraph query`` prints its rows."""

    table = "table"
    json = "json"
    csv = "csv"


def _cell(value: Any, *, short_floats: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    if short_floats and isinstance(value, float):
        return f"{value:.6g}"  # tables are for reading; json and csv keep full precision
    return str(value)


def render_rows(rows: Sequence[dict[str, Any]], fmt: OutputFormat) -> str:
    """``rows`` as text: an aligned table, a JSON array, or CSV with a header line."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    if fmt is OutputFormat.json:
        return json.dumps(list(rows), default=str, indent=2)
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(name)) for name in columns] for row in rows)
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    cells = [[_cell(row.get(name), short_floats=True) for name in columns] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def run_query(
    ctx: typer.Context,
    cypher: str,
    params: dict[str, Any],
    *,
    write: bool,
    fmt: OutputFormat,
) -> None:
    """Open the store (read-only unless ``write``), run ``cypher`` and print its rows."""

    with state(ctx).open_store(read_only=not write) as store:
        rows = store.query(cypher, params, write=write)
        if write:  # e.g. a diagnosis set by hand: diagnosed-patterns reads FLAGGED edges
            store.refresh_after_write(cypher, params)
    typer.echo(render_rows(rows, fmt))


@store_app.command("info")
def info(ctx: typer.Context) -> None:
    """Which store is in use: engine, location, models, leftovers of interrupted writes."""

    from graphstore.versions import store_format_version

    with state(ctx).open_store(read_only=True) as store:
        details = store.info()
        details["format"] = store_format_version(store)
    for key, value in details.items():
        typer.echo(f"{key}: {value}")


@store_app.command("repair")
def repair(ctx: typer.Context) -> None:
    """Finish interrupted model switches and deletes; remove staged copies and orphan nodes.

    Run it when no other explgraph process writes the store (an embedded store is locked
    anyway; a Bolt server is not).
    """

    cli = state(ctx)
    with cli.open_store(create=False) as store:
        found = store.repair()
    staged, unfinished, orphans = found["staging"], found["unfinished"], found["orphans"]
    recovered = found.get("recovered", [])
    for line in recovered:
        typer.echo(line)
    if not (staged or unfinished or orphans):
        if not recovered:
            typer.echo("nothing to repair")
        return
    for sid, status in staged.items():
        verb = "finished the switch of" if status in ("switching", "renaming") else "removed"
        typer.echo(f"{verb} staged copy {sid} ({status})")
    for model_id, status in unfinished.items():
        typer.echo(f"removed unfinished model {model_id} ({status})")
    for label, count in orphans.items():
        typer.echo(f"removed {count} orphan {label}")


@store_app.command("pack")
def pack(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The id of the model to pack."),
    out: Path = typer.Argument(..., help="The pack file to write (e.g. MODEL.egpack)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
) -> None:
    """Write one model with everything stored for it (AOGs, comparisons) into one file."""
    from graphstore.pack import pack_model

    with state(ctx).open_store(read_only=True) as store:
        manifest = pack_model(store, model, out, force=force)
    counts = manifest["counts"]
    typer.echo(
        f"packed {model} (store format {manifest['store_format']}, "
        f"{counts['patterns']} patterns, {counts['parts']} parts, {counts['matches']} matches, "
        f"{counts.get('explainers', 0)} explainers) into {out}"
    )


@store_app.command("unpack")
def unpack(
    ctx: typer.Context,
    pack_file: Path = typer.Argument(..., help="A file written by `explgraph store pack`."),
    force: bool = typer.Option(False, "--force", help="Replace the model if the store has it."),
) -> None:
    """Write the model of a pack into this store (replacing it atomically with --force)."""
    from graphstore.pack import unpack_model

    with state(ctx).open_store() as store:
        summary = unpack_model(store, pack_file, force=force)
    for note in summary.notes:
        typer.echo(f"warning: {note}", err=True)
    counts = summary.counts
    typer.echo(
        f"unpacked {summary.model_id}: {counts['patterns']} patterns, {counts['parts']} parts, "
        f"{counts['matches'] - summary.skipped_matches} matches, "
        f"{counts.get('explainers', 0)} explainers into {state(ctx).store_spec}"
    )


@store_app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    statistics: bool = typer.Option(
        False,
        "--statistics",
        help="Compute what older models lack from their mining cache entry (under --cache-dir) "
        "or, without it, from the training images they recorded.",
    ),
    cache_dir: CacheDir = None,
    device: Device = "auto",
) -> None:
    """Bring the models of an older store to this version's format (an embedded store is
    copied beside itself first)."""
    from explgraph.cli.environment import default_cache_dir
    from explgraph.workflows.upgrade import backup_store, upgrade_store

    cli = state(ctx)
    if statistics and Path(cli.store_spec).is_dir():
        typer.echo(f"backed up the store to {backup_store(Path(cli.store_spec))}")
    with cli.open_store(create=False) as store:
        lines = upgrade_store(
            store,
            statistics=statistics,
            cache_dir=cache_dir or default_cache_dir(),
            device=device,
            progress=cli.progress,
        )
    if not lines:
        typer.echo("every model is in the current format: nothing to upgrade")
    for line in lines:
        typer.echo(f"{line.model_id}: format {line.before} -> {line.after}: {line.note}")


@store_app.command("smoke")
def smoke(
    ctx: typer.Context,
    model_id: str = typer.Option("smoke", "--model-id", help="Id of the synthetic model."),
    channels: int = typer.Option(8, "--channels", min=1, help="Filters per synthetic layer."),
) -> None:
    """Write a small synthetic graph (VGG-16 shaped) into the store and read it back."""
    from graphstore.testing.synthetic import synthetic_records

    cli = state(ctx)
    records = synthetic_records(model_id, channels=channels, n_images=20, fires_per_image=50)
    with cli.open_store() as store:
        store.write_model(records, progress=cli.progress)
        described = store.describe_model(model_id)
    counts = ", ".join(f"{described[k]} {k[2:]}" for k in ("n_patterns", "n_parents", "n_fires"))
    typer.echo(f"wrote {model_id} ({described['status']}): {counts} into {cli.store_spec}")


def models(
    ctx: typer.Context,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
) -> None:
    """List the mined models with their status and sizes."""

    with state(ctx).open_store(read_only=True) as store:
        rows = store.list_models()
    if not rows and fmt is OutputFormat.table:
        typer.echo("no models in this store yet (mine one with `explgraph mine`)")
        return
    typer.echo(render_rows(rows, fmt))


def query(
    ctx: typer.Context,
    cypher: str | None = typer.Argument(
        None,
        help="The Cypher statement (use $name for parameters), or the name of a canned query "
        "(see --list).",
        show_default=False,
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A parameter as name=value (value parsed as JSON if it can be)."
    ),
    write: bool = typer.Option(
        False,
        "--write",
        help="Allow the statement to change the store, write or read files, change the schema "
        "or checkpoint.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    list_canned: bool = typer.Option(
        False, "--list", help="List the canned queries with their parameters and stop."
    ),
) -> None:
    """Run a Cypher query, or a canned query by name, against the store (read-only unless --write).

    Read-only means read-only: without --write a statement runs only if it is made of read
    clauses (MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, ORDER BY, SKIP, LIMIT, UNION,
    CALL of read-only procedures and subqueries, SHOW INDEXES/CONSTRAINTS, EXPLAIN/PROFILE).
    Anything else is refused before it runs, in one line naming the clause: writes, files
    (COPY, LOAD FROM, LOAD CSV, EXPORT), schema changes, CHECKPOINT, ATTACH, a second statement
    after ;, and text the engines read differently (a // comment ended by a bare carriage
    return). Strings and comments do not count (RETURN 'COPY' is fine). Every $parameter needs
    a -p value; integers must fit in 64 bits.

    Examples: explgraph query --list;
    explgraph query filter-patterns -p model=toy_vgg-bird -p layer=block4_conv2 -p filter=3
    """
    from explgraph.cli.usage import usage_error
    from queries.canned import CANNED, parse_params

    if list_canned:
        rows = [
            {"name": q.name, "parameters": q.signature(), "what": q.summary}
            for q in CANNED.values()
        ]
        typer.echo(render_rows(rows, fmt))
        return
    if cypher is None:
        raise usage_error(
            "missing; give a Cypher statement or a canned query name (explgraph query --list "
            "shows them)",
            ctx,
            hint="'CYPHER'",
        )
    if cypher in CANNED:
        run_named(ctx, cypher, parse_params(param), fmt=fmt)
        return
    run_query(ctx, cypher, parse_params(param), write=write, fmt=fmt)


def run_named(ctx: typer.Context, name: str, params: dict[str, Any], *, fmt: OutputFormat) -> None:
    """Open the store read-only, run canned query ``name`` and print its rows."""
    from queries.canned import run_canned

    with state(ctx).open_store(read_only=True) as store:
        rows = run_canned(store, name, params)
    typer.echo(render_rows(rows, fmt))


def delete(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The id of the model to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a model and everything it owns (images other models use are kept)."""

    with state(ctx).open_store(create=False) as store:
        store.describe_model(model)  # UnknownModel, with the known ids, before asking
        if not yes and not typer.confirm(f"delete model {model!r} and all its patterns?"):
            raise typer.Abort()
        store.delete_model(model)
    if not state(ctx).quiet:
        typer.echo(f"deleted {model}")


def register(app: typer.Typer) -> None:
    """Add ``store``, ``models``, ``query`` and ``delete`` to the root app."""
    app.add_typer(store_app, name="store")
    app.command("models")(models)
    app.command("query")(query)
    app.command("delete")(delete)


__all__ = ["OutputFormat", "register", "render_rows", "run_named", "run_query"]
