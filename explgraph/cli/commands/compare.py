"""``explgraph compare MODEL_A MODEL_B``: which patterns two mined models share.

Help text (shown by ``explgraph compare --help``) carries the Cypher for the most asked follow-up
question, so users can go from the table to the store without reading the schema.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from explgraph.cli.loading import chosen_label, open_graph
from explgraph.cli.options import CacheDir, Device, Force, Json, Label, ModelFiles
from explgraph.cli.state import state
from explgraph.core.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from explgraph.cli.state import CliState
    from graphstore import GraphStore
    from queries.compare import CompareReport
    from queries.loaded import LoadedGraph

_HELP = (
    "Match the patterns of two mined models by where and when they fire on shared images.\n\n"
    "Both graphs are read from the store and inferred on the same images (default: the images "
    "model A was mined on). A pattern of A and one of B match when they fire on the same images "
    "at the same places in the object box: similarity = co-firing (overlap of their top-k "
    "images, weighted by score) x positional agreement exp(-d^2 / 2t^2), t = --tolerance of the "
    "box diagonal. Matches are one-to-one mutual best pairs with similarity >= --threshold, "
    "written back as MATCHES edges (A pattern -> B pattern, similarity) unless --no-write.\n\n"
    "Patterns of A with no counterpart in B, per layer:\n\n"
    # The backslash keeps rich from reading the relationship pattern as markup.
    "explgraph query \"MATCH (p:Pattern) WHERE p.model_id = 'A' "
    "OPTIONAL MATCH (p)-\\[m:MATCHES]-(q:Pattern) WHERE q.model_id = 'B' "
    "WITH p, count(q) AS matches WHERE matches = 0 "
    'RETURN p.layer AS layer, count(p) AS unmatched ORDER BY layer"'
)


def _split_layers(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise InputError("--layers-a / --layers-b need at least one layer name, comma-separated")
    return names


def _records(
    loaded: LoadedGraph,
    images: Path | None,
    annotations: Path | None,
    label: str | None,
    split: str | None,
    max_images: int | None,
) -> list[Any]:
    """The shared images: given ones, or the set model A was mined on."""
    from miner.data.folder import load_dataset

    params = loaded.params
    if images is None:
        if not params.get("images"):
            raise InputError(f"model {loaded.model_id} records no image folder: pass --images DIR")
        images = Path(params["images"])
        if annotations is None and params.get("annotations"):
            annotations = Path(params["annotations"])
        split = split if split is not None else params.get("split")
    chosen = chosen_label(label, loaded)
    dataset = load_dataset(images, annotations)
    records = list(dataset.select(split=split, label=chosen).records)
    if not records:
        raise InputError(
            f"no images in {images} with label={chosen!r} split={split!r}: check --label / --split"
        )
    return records[:max_images] if max_images is not None else records


def compare(
    ctx: typer.Context,
    model_a: str = typer.Argument(..., help="Model id A in the store."),
    model_b: str = typer.Argument(..., help="Model id B in the store (may equal A)."),
    images: Path | None = typer.Option(
        None, "--images", help="Shared image folder (default: the images A was mined on)."
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Annotation JSON for --images (boxes, part keypoints)."
    ),
    label: Label = None,
    split: str | None = typer.Option(
        None, "--split", help="Only this split (default: A's mining split; all with --images)."
    ),
    max_images: int | None = typer.Option(None, "--max-images", min=2, help="Use the first N."),
    tolerance: float = typer.Option(
        0.1, "--tolerance", min=1e-6, help="Positional tolerance t, share of the box diagonal."
    ),
    top_k: int = typer.Option(20, "--top-k", min=1, help="Images per pattern counted as firings."),
    threshold: float = typer.Option(
        0.5, "--threshold", min=0.0, max=1.0, help="Least similarity of a match."
    ),
    stable: float = typer.Option(
        0.05, "--stable", min=0.0, help="Most part instability of a 'stable' pattern."
    ),
    layers_a: str | None = typer.Option(None, "--layers-a", help="Comma-separated layers of A."),
    layers_b: str | None = typer.Option(None, "--layers-b", help="Comma-separated layers of B."),
    png: Path | None = typer.Option(None, "--png", help="Write the match-matrix PNG here."),
    no_write: bool = typer.Option(False, "--no-write", help="Do not write MATCHES edges."),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_files: ModelFiles = None,
    as_json: Json = False,
    force: Force = False,
) -> None:
    from explgraph.cli.outputs import check_output_file
    from queries.compare import CompareSettings, compare_models

    cli = state(ctx)
    if png is not None:
        check_output_file(png, force=force, store_spec=cli.store_spec, flag="--png")
    settings = CompareSettings(
        tolerance=tolerance,
        top_k=top_k,
        threshold=threshold,
        stable_threshold=stable,
        layers_a=_split_layers(layers_a),
        layers_b=_split_layers(layers_b),
    )
    with cli.open_store(read_only=True) as store:
        loaded_a, loaded_b = _open_both(store, (model_a, model_b), cache_dir, device, ctx)
        records = _records(loaded_a, images, annotations, label, split, max_images)
        report = compare_models(
            store, loaded_a, loaded_b, records, settings=settings, progress=cli.progress
        )
    result = _write_outputs(cli, report, png, write=not no_write)
    if as_json:
        typer.echo(json.dumps(_clean(result), indent=2, allow_nan=False))
    else:
        print_comparison(result)


def _open_both(
    store: GraphStore,
    models: tuple[str, str],
    cache_dir: Path | None,
    device: str,
    ctx: typer.Context,
) -> tuple[LoadedGraph, LoadedGraph]:
    """Both models, read before any work (an unknown B fails at once); A twice is one read.
    Each looks for its checkpoint among the command's ``--model-file`` files first."""
    model_a, model_b = models
    files = list(ctx.params.get("model_files") or [])

    def one(model_id: str) -> LoadedGraph:
        return open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=files, ctx=ctx
        )

    loaded_a = one(model_a)
    return (loaded_a, loaded_a) if model_b == model_a else (loaded_a, one(model_b))


def _write_outputs(
    cli: CliState, report: CompareReport, png: Path | None, *, write: bool
) -> dict[str, Any]:
    """MATCHES edges into the store (unless ``--no-write``) and the ``--png`` picture; the
    report's JSON object saying what was written."""
    from queries.compare import draw_match_matrix, write_matches

    written = 0
    if write:
        with cli.open_store() as store:
            written = write_matches(store, report.model_a, report.model_b, report.matches)
    result = report.to_dict()
    result["matches_written"] = written
    if png is not None:
        draw_match_matrix(
            report.layer_pairs,
            report.layers_a,
            report.layers_b,
            png,
            title=f"{report.model_a} (rows) vs {report.model_b} (columns): matched patterns",
        )
        result["png"] = str(png)
    return result


def _clean(value: Any) -> Any:
    """NaN (no value) becomes null and numpy scalars plain numbers: strict JSON."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def print_comparison(result: dict[str, Any]) -> None:
    """The comparison as rich tables: layer pairs, layers, parts, statistics."""
    from explgraph.cli.console import output_console

    # Piped output gets room for full layer names (rich would otherwise wrap at 80 columns).
    console = output_console()
    console.print(_pairs_table(result))
    for table in _layer_tables(result):
        console.print(table)
    if result["parts"]:
        console.print(_parts_table(result))
    console.print(_statistics_table(result))
    timings = result.get("timings", {})
    console.print(
        f"{result['n_matches']} matches ({result.get('matches_written', 0)} MATCHES edges written)"
        + (f"; {timings['total']:.1f} s" if "total" in timings else "")
        + (f"; PNG: {result['png']}" if result.get("png") else "")
    )


def _pairs_table(result: dict[str, Any]) -> Table:
    """One row per compared layer pair."""
    from rich.table import Table

    s = result["settings"]
    pairs = Table(
        "layer A",
        "layer B",
        "patterns A",
        "patterns B",
        "matched",
        "unique to A",
        "unique to B",
        "mean sim",
        title=f"{result['model_a']} vs {result['model_b']}: {result['n_images']} images, "
        f"top-{result['top_k_used']} firings, tolerance {s['tolerance']}, "
        f"threshold {s['threshold']}",
    )
    for row in result["layer_pairs"]:
        pairs.add_row(
            row["layer_a"],
            row["layer_b"],
            str(row["patterns_a"]),
            str(row["patterns_b"]),
            str(row["matched"]),
            str(row["unique_a"]),
            str(row["unique_b"]),
            _f(row["mean_similarity"]),
        )
    return pairs


def _layer_tables(result: dict[str, Any]) -> list[Table]:
    """Per model, each compared layer's matched and unmatched patterns."""
    from rich.table import Table

    tables = []
    for side in ("a", "b"):
        layers = Table(
            "layer",
            "patterns",
            "matched somewhere",
            "no counterpart",
            title=result[f"model_{side}"],
        )
        for row in result[f"per_layer_{side}"]:
            layers.add_row(
                row["layer"], str(row["patterns"]), str(row["matched"]), str(row["unique"])
            )
        tables.append(layers)
    return tables


def _parts_table(result: dict[str, Any]) -> Table:
    """Per part: stable patterns of each model and how many found a counterpart."""
    from rich.table import Table

    s = result["settings"]
    parts = Table(
        "part",
        "stable A",
        "stable B",
        "instab. A",
        "instab. B",
        f"best-{s['n_best']} A",
        f"best-{s['n_best']} B",
        "stable A matched",
        "stable B matched",
        title=f"per part (stable: instability <= {s['stable_threshold']}; lower is better)",
    )
    for row in result["parts"]:
        parts.add_row(
            row["part"],
            str(row["stable_a"]),
            str(row["stable_b"]),
            _f(row["instability_a"], 4),
            _f(row["instability_b"], 4),
            _f(row["best_a"], 4),
            _f(row["best_b"], 4),
            str(row["stable_a_matched"]),
            str(row["stable_b_matched"]),
        )
    return parts


def _statistics_table(result: dict[str, Any]) -> Table:
    """Both graphs' statistics side by side."""
    from rich.table import Table

    stats = Table("statistic", result["model_a"], result["model_b"], title="graph statistics")
    sa, sb = result["statistics"]["a"], result["statistics"]["b"]
    stats.add_row("patterns", str(sa["patterns"]), str(sb["patterns"]))
    stats.add_row("PARENT edges", str(sa["edges"]), str(sb["edges"]))
    stats.add_row(
        "mean spread (share of input)", _f(sa["mean_spread_share"]), _f(sb["mean_spread_share"])
    )
    for label, key in (
        ("parents / pattern (mean/p90/max)", "parents"),
        ("children / pattern (mean/p90/max)", "children"),
    ):
        stats.add_row(label, _degrees(sa, key), _degrees(sb, key))
    return stats


def _degrees(stats: dict[str, Any], key: str) -> str:
    """Per layer ``name: mean/p90/max`` of a degree distribution."""
    parts = []
    for row in stats["layers"]:
        dist = row[key]
        if dist is not None:
            parts.append(f"{row['layer']}: {dist['mean']:.1f}/{dist['p90']:.0f}/{dist['max']:.0f}")
    return "; ".join(parts) or "-"


def register(app: typer.Typer) -> None:
    """Add ``explgraph compare`` to the root app."""
    app.command("compare", help=_HELP)(compare)


__all__ = ["print_comparison", "register"]
