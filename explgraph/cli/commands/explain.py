"""``explgraph explain MODEL IMAGE``: the patterns that fire on one image, and where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from explgraph.cli.loading import open_graph
from explgraph.cli.options import CacheDir, Device, Force, Json, ModelFile
from explgraph.cli.state import state
from explgraph.cli.usage import usage_error
from explgraph.core.errors import InputError

if TYPE_CHECKING:
    from graphstore import GraphStore
    from queries.explain import Explanation


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` as a box; a usage error (exit 2) naming the format otherwise."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise usage_error(f"bad --box {text!r}: write it as x0,y0,x1,y1 in image pixels")
    return values[0], values[1], values[2], values[3]


def _box_from_annotations(annotations: Path, image: Path) -> tuple[float, float, float, float]:
    from miner.data.folder import load_dataset

    dataset = load_dataset(annotations)  # a .json file or an annotated folder
    for record in dataset.records:
        if record.path.resolve() == image.resolve() and record.box is not None:
            return record.box
    raise InputError(f"{annotations} gives no box for {image}: pass --box x0,y0,x1,y1 instead")


def _the_box(
    box: str | None, annotations: Path | None, image: Path
) -> tuple[float, float, float, float] | None:
    """The object box of ``--box`` or ``--annotations``; ``None``: the whole image."""
    if box is not None and annotations is not None:
        raise usage_error("give either --box or --annotations, not both")
    if annotations is not None:
        return _box_from_annotations(annotations, image)
    return parse_box(box) if box is not None else None


def explain(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    image: Path = typer.Argument(..., help="The image to explain."),
    box: str | None = typer.Option(
        None, "--box", help="Object box x0,y0,x1,y1 in image pixels (default: whole image)."
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Annotation JSON (or dataset folder) to take the box from."
    ),
    threshold: float = typer.Option(
        1.0, "--threshold", help="Fired = score >= this x the pattern's reference score."
    ),
    quantile: float = typer.Option(
        0.9,
        "--quantile",
        help="The reference: this quantile of the pattern's scores on its mining images.",
    ),
    top: int = typer.Option(5, "--top", min=1, help="Patterns listed per layer."),
    heatmap: Path | None = typer.Option(
        None, "--heatmap", help="Heat-map PNG (default: <image stem>.heatmap.png here)."
    ),
    patches: bool = typer.Option(
        False, "--patches", help="Also write a contact sheet of the top patterns' best patches."
    ),
    n_patches: int = typer.Option(8, "--n-patches", min=1, help="Patterns on the contact sheet."),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    as_json: Json = False,
    force: Force = False,
) -> None:
    """Prediction, fired patterns per layer, parts located as ``locate`` does, how far the image
    is from the mining images (one warning line when outside), and a heat-map PNG."""
    from explgraph.cli.outputs import check_output_files
    from queries.explain import explain_image

    the_box = _the_box(box, annotations, image)
    cli = state(ctx)
    heat_path = heatmap or Path(f"{image.stem}.heatmap.png")
    sheet_path = heat_path.with_name(f"{image.stem}.patches.png") if patches else None
    pictures = [heat_path] + ([sheet_path] if sheet_path else [])
    check_output_files(pictures, force=force, store_spec=cli.store_spec, flag="--heatmap")
    with cli.open_store(read_only=True) as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        explanation = explain_image(
            store,
            loaded,
            image,
            box=the_box,
            threshold=threshold,
            quantile=quantile,
            progress=cli.progress,
        )
        _write_pictures(store, explanation, heat_path, sheet_path, n_patches)
    _print(explanation, top, heat_path, sheet_path, as_json=as_json)


def _print(
    explanation: Explanation, top: int, heat_path: Path, sheet_path: Path | None, *, as_json: bool
) -> None:
    """The explanation as text or one JSON object, with the pictures' paths."""
    if as_json:
        result = explanation.to_dict(top)
        result["heatmap"] = str(heat_path)
        result["patches"] = str(sheet_path) if sheet_path else None
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(explanation.text(top))
        typer.echo(f"heat map: {heat_path}" + (f"; patches: {sheet_path}" if sheet_path else ""))
    if explanation.warning:  # on stderr under --json, so stdout stays one JSON document
        typer.echo(explanation.warning, err=as_json)


def _write_pictures(
    store: GraphStore,
    explanation: Explanation,
    heat_path: Path,
    sheet_path: Path | None,
    n_patches: int,
) -> None:
    """The heat map, and with ``--patches`` the contact sheet of the top patterns."""
    from queries.explain import contact_sheet, write_heatmap

    write_heatmap(explanation, heat_path)
    if sheet_path is not None:
        chosen = [p.pattern_id for p in explanation.top_patterns(n_patches)]
        contact_sheet(store, explanation.model_id, chosen, sheet_path)


def register(app: typer.Typer) -> None:
    """Add the ``explain`` command."""
    app.command("explain")(explain)


__all__ = ["parse_box", "register"]
