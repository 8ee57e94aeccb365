"""``explgraph compare MODEL_A MODEL_B``: which patterns two mined models share.

Help text (shown by ``explgraph compare --help``) carries the Cypher for the most asked follow-up
question, so users can go from the table to the store without reading the schema.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.state import state
from explgraph.core.errors import InputError

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
    described: dict[str, Any],
    images: Path | None,
    annotations: Path | None,
    label: str | None,
    split: str | None,
    max_images: int | None,
) -> list[Any]:
    """The shared images: given ones, or the set model A was mined on."""
    from miner.data.folder import load_dataset

    params = described["params"]
    if images is None:
        if not params.get("images"):
            raise InputError(
                f"model {described['model_id']} records no image folder: pass --images DIR"
            )
        images = Path(params["images"])
        if annotations is None and params.get("annotations"):
            annotations = Path(params["annotations"])
        split = split if split is not None else params.get("split")
    chosen_label = label if label is not None else params.get("label")
    dataset = load_dataset(images, annotations)
    records = list(dataset.select(split=split, label=chosen_label).records)
    if not records:
        raise InputError(
            f"no images in {images} with label={chosen_label!r} split={split!r}: "
            "check --label / --split"
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
    label: str | None = typer.Option(
        None, "--label", help="Images of this category (default: the one A was mined on)."
    ),
    split: str | None = typer.Option(None, "--split", help="Only this split."),
    max_images: int | None = typer.Option(None, "--max-images", min=2, help="Use the first N."),
    tolerance: float = typer.Option(
        0.1, "--tolerance", min=1e-6, help="Positional tolerance t, share of the box diagonal."
    ),
    top_k: int = typer.Option(
        20, "--top-k", min=1, help="Images per pattern that count as firings."
    ),
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
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Feature cache folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --png file."),
) -> None:
    from queries.compare import CompareSettings, compare_models, draw_match_matrix, write_matches

    cli = state(ctx)
    if png is not None:
        from explgraph.cli.outputs import check_output_file

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
        described = store.describe_model(model_a)
        store.describe_model(model_b)  # fail before any work if B is unknown
        records = _records(described, images, annotations, label, split, max_images)
        report = compare_models(
            store,
            model_a,
            model_b,
            records,
            cache_dir=cache_dir or default_cache_dir(),
            settings=settings,
            device=device,
            progress=cli.progress,
        )
    written = 0
    if not no_write:
        with cli.open_store() as store:
            written = write_matches(store, model_a, model_b, report.matches)
    result = report.to_dict()
    result["matches_written"] = written
    if png is not None:
        draw_match_matrix(
            report.layer_pairs,
            report.layers_a,
            report.layers_b,
            png,
            title=f"{model_a} (rows) vs {model_b} (columns): matched patterns",
        )
        result["png"] = str(png)
    if as_json:
        typer.echo(json.dumps(_clean(result), indent=2, allow_nan=False))
    else:
        print_comparison(result)


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
    from rich.table import Table

    from explgraph.cli.console import output_console

    # Piped output gets room for full layer names (rich would otherwise wrap at 80 columns).
    console = output_console()
    a, b = result["model_a"], result["model_b"]
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
        title=f"{a} vs {b}: {result['n_images']} images, top-{result['top_k_used']} firings, "
        f"tolerance {s['tolerance']}, threshold {s['threshold']}",
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
    console.print(pairs)
    for side, model in (("a", a), ("b", b)):
        layers = Table("layer", "patterns", "matched somewhere", "no counterpart", title=model)
        for row in result[f"per_layer_{side}"]:
            layers.add_row(
                row["layer"], str(row["patterns"]), str(row["matched"]), str(row["unique"])
            )
        console.print(layers)
    if result["parts"]:
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
        console.print(parts)
    stats = Table("statistic", a, b, title="graph statistics")
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
    console.print(stats)
    timings = result.get("timings", {})
    console.print(
        f"{result['n_matches']} matches ({result.get('matches_written', 0)} MATCHES edges written)"
        + (f"; {timings['total']:.1f} s" if "total" in timings else "")
        + (f"; PNG: {result['png']}" if result.get("png") else "")
    )


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
