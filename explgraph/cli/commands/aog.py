"""``explgraph aog build|show`` and ``explgraph locate``: part And-Or graphs (docs/method.md §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from explgraph.cli.loading import open_graph
from explgraph.cli.options import CacheDir, Device, Json, ModelFile
from explgraph.cli.state import state

aog_app = typer.Typer(
    help="And-Or graphs of semantic parts, built from 1-3 annotated images.",
    no_args_is_help=True,
)

# one option for `aog build` and `evaluate parts`, so the two cannot drift apart
APPEARANCE_MAP = typer.Option(
    "all",
    "--appearance-map",
    help="With --orientation appearance, the vote map weighed by the part's appearance: "
    "all (every template's votes summed) or winner (the strongest template's only).",
)


@aog_app.command("build")
def build(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    shots: Path = typer.Option(
        ...,
        "--shots",
        help='Shots file ("explgraph-shots/1": 1-3 images with the part centre) or an '
        "annotation file whose images show the part.",
    ),
    part: str | None = typer.Option(None, "--part", help="Part name (required for annotations)."),
    kernel_width: float = typer.Option(
        35.0, "--kernel-width", help="Voting kernel FWHM, pixels at a 224 px input."
    ),
    radius: float = typer.Option(
        0.15, "--radius", help="Candidates fire within this fraction of the input of the part."
    ),
    max_keep: int = typer.Option(40, "--max-keep", min=1, help="Most patterns kept per layer."),
    orientation: str = typer.Option(
        "appearance",
        "--orientation",
        help="Image or mirror at localisation: appearance (the vote map checked against the "
        "shots' part appearance), votes or graph.",
    ),
    appearance_map: str = APPEARANCE_MAP,
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    as_json: Json = False,
) -> None:
    """Build a part's And-Or graph from the shots and write it into the store."""
    from queries.aog import SelectionSettings, build_aog, read_shots

    cli = state(ctx)
    shot_set = read_shots(shots, part)
    settings = SelectionSettings(
        kernel_width=kernel_width,
        radius=radius,
        max_keep=max_keep,
        orientation=orientation,
        appearance_map=appearance_map,
    )
    with cli.open_store() as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        report = build_aog(store, loaded, shot_set, settings=settings, progress=cli.progress)
    result = report.to_dict()
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        print_aog(result)


@aog_app.command("show")
def show(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    part: str = typer.Option(..., "--part", help="Part name."),
    as_json: Json = False,
) -> None:
    """Show a stored part AOG: templates, kept patterns per layer and the cuts."""
    from queries.aog import load_aog

    with state(ctx).open_store(read_only=True) as store:
        result = load_aog(store, model_id, part).summary()
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        print_aog(result)


def print_aog(result: dict[str, Any]) -> None:
    """Templates and per-layer cuts as a table."""
    from rich.table import Table

    from explgraph.cli.console import output_console

    table = Table(
        "template",
        "layer",
        "candidates",
        "from store",
        "with firings",
        "kept",
        "cut weight",
        title=f"And-Or graph of {result['part']!r} on {result['model_id']}",
    )
    for template in result["templates"]:
        for cut in template["layers"]:
            weight = cut.get("cut_weight")
            table.add_row(
                str(template["template_id"].rsplit("/", 1)[-1]),
                str(cut["layer"]),
                str(cut["candidates"]),
                str(cut.get("from_store", "-")),
                str(cut.get("with_firing_images", "-")),
                str(cut["kept"]),
                "-" if weight is None else f"{weight:.3g}",
            )
    console = output_console()
    console.print(table)
    for template in result["templates"]:
        console.print(
            f"{template['template_id']}: {template['n_patterns']} patterns, "
            f"{template['n_parent_links']} PARENT links among them; shot {template['image']}"
        )


def _records(images: list[Path]) -> list[Any]:
    """Image files, folders or annotation files as records (boxes from annotations)."""
    from explgraph.core.errors import InputError
    from miner.data.folder import load_dataset
    from miner.data.records import ImageRecord

    records: list[Any] = []
    for path in images:
        if path.suffix == ".json" or path.is_dir():
            records += load_dataset(path).records
        elif path.is_file():
            records.append(ImageRecord(path=path))
        else:
            raise InputError(f"{path} is neither an image, a folder nor an annotation file")
    return records


def locate(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    images: list[Path] = typer.Argument(
        ..., help="Image files, folders, or annotation JSON files (which give object boxes)."
    ),
    part: str = typer.Option(..., "--part", help="Part whose AOG was built."),
    vote_maps: Path | None = typer.Option(
        None, "--vote-maps", help="Write a PNG of each image's vote map into this folder."
    ),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    as_json: Json = False,
) -> None:
    """Locate a part in new images with its stored And-Or graph, and say why."""
    from queries.aog import locate_part

    cli = state(ctx)
    if vote_maps is not None:
        from explgraph.cli.outputs import check_output_folder

        check_output_folder(vote_maps, store_spec=cli.store_spec, flag="--vote-maps")
    records = _records(images)
    with cli.open_store(read_only=True) as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        result = locate_part(
            store, loaded, part, records, vote_map_dir=vote_maps, progress=cli.progress
        )
    if vote_maps is not None:  # stderr under --json, so stdout stays one JSON document
        written = sum(prediction is not None for prediction in result.predictions)
        typer.echo(
            f"vote maps: {written} PNGs ({{index}}-{{image}}-{part}.png) in {vote_maps.resolve()}",
            err=as_json,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for record, prediction in zip(records, result.predictions, strict=True):
        if prediction is None:
            reason = result.skipped.get(str(record.path), "not usable")
            typer.echo(f"{record.path}: skipped ({reason})")
            continue
        typer.echo(
            f"{record.path}: {part} at ({prediction.x:.1f}, {prediction.y:.1f}) "
            f"[template {prediction.template}{', mirrored' if prediction.mirrored else ''}] "
            f"{prediction.explanation()}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``aog`` group and the ``locate`` command."""
    app.add_typer(aog_app, name="aog")
    app.command("locate")(locate)


__all__ = ["print_aog", "register"]
