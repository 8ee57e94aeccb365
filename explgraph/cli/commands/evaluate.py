"""``explgraph evaluate ...``: how good is a mined graph (docs/method.md §7)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from explgraph.cli.commands.aog import APPEARANCE_MAP
from explgraph.cli.loading import annotated_records, chosen_label, open_graph
from explgraph.cli.options import CacheDir, Device, Json, Label, ModelFile, Split
from explgraph.cli.state import state

if TYPE_CHECKING:
    from explgraph.core.progress import Progress
    from graphstore import GraphStore
    from queries.aog import SelectionSettings
    from queries.aog.controls import ControlSettings
    from queries.loaded import LoadedGraph

_ShotPriorSigma = Annotated[
    float | None,
    typer.Option(
        "--shot-prior-sigma",
        min=0.001,
        help="σ of the shot-prior control, a fraction of the crop side (default: the value "
        "chosen on the dev seeds, queries.aog.controls.SHOT_PRIOR_SIGMA).",
        show_default=False,
    ),
]
_ShotPriorSweep = Annotated[
    str,
    typer.Option(
        "--shot-prior-sweep",
        help="Dev runs only: comma list of more σ for the shot-prior control, reported apart "
        "(e.g. 0.05,0.1,0.2).",
    ),
]

evaluate_app = typer.Typer(help="Evaluate mined graphs (docs/method.md §7).", no_args_is_help=True)


@evaluate_app.command("stability")
def stability(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    annotations: Path = typer.Option(
        ..., "--annotations", help="Annotation JSON (or dataset folder) with part keypoints."
    ),
    label: Label = None,
    split: Split = None,
    top_k: int = typer.Option(20, "--top-k", min=2, help="Top images per pattern."),
    no_controls: bool = typer.Option(
        False, "--no-controls", help="Skip the initialisation and no-parents controls."
    ),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    as_json: Json = False,
) -> None:
    """Location instability of graph patterns vs raw filters, per layer and overall."""
    from queries.evaluate_stability import evaluate_stability

    cli = state(ctx)
    with cli.open_store(read_only=True) as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        records = annotated_records(annotations, label=chosen_label(label, loaded), split=split)
        report = evaluate_stability(
            loaded, records, top_k=top_k, controls=not no_controls, progress=cli.progress
        )
    result = report.to_dict()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_stability(result)


def _fmt(value: Any) -> str:
    """A figure to 4 decimals; "-" where there is none (not computed, or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"


def _has(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def print_stability(result: dict[str, Any]) -> None:
    """The stability report as a table (unsigned / signed per detector) and the verdicts."""
    from rich.table import Table

    from explgraph.cli.console import output_console

    console = output_console()
    columns = (
        ("patterns", "patterns"),
        ("frozen_prior", "frozen at prior mu"),
        ("filters", "raw filters"),
        ("initialisation", "at initialisation"),
        ("no_parents", "without parents"),
    )
    table = Table(
        "layer",
        *(label for _, label in columns),
        title=f"location instability of {result['model_id']} "
        f"({result['n_images']} images, top {result['top_k']}; unsigned / signed; "
        "lower is better)",
    )

    def pair(row: dict[str, Any], key: str) -> str:
        return f"{_fmt(row.get(key))} / {_fmt(row.get(key + '_signed'))}"

    for row in result["per_layer"]:
        table.add_row(row["layer"], *(pair(row, key) for key, _ in columns))
    signed = result.get("signed", {})
    controls = result["controls"]
    table.add_row(
        "overall",
        f"{_fmt(result['patterns_instability'])} / {_fmt(signed.get('patterns'))}",
        f"{_fmt(controls.get('frozen_prior'))} / {_fmt(signed.get('frozen_prior'))}",
        f"{_fmt(result['filters_instability'])} / {_fmt(signed.get('filters'))}",
        f"{_fmt(controls.get('initialisation'))} / {_fmt(signed.get('initialisation'))}",
        f"{_fmt(controls.get('no_parents_lower_layers'))} / {_fmt(signed.get('no_parents'))}",
    )
    console.print(table)
    fixed = result.get("fixed_points", {})
    if fixed:
        cells = int(fixed.get("grid_cells", 0))
        console.print(
            f"fixed point at the crop centre: {_fmt(fixed.get('centre'))} / "
            f"{_fmt(fixed.get('centre_signed'))}; best fixed point of a {cells}x{cells} grid "
            f"(chosen per landmark on these images): {_fmt(fixed.get('best'))} / "
            f"{_fmt(fixed.get('best_signed'))}"
        )
    if result.get("best_landmark"):
        console.print(_best_landmark_table(result["best_landmark"]))
    if not any(_has(controls.get(key)) for key in ("initialisation", "no_parents_lower_layers")):
        console.print("controls not computed (--no-controls): no learning or parent gains")
    for line in result.get("verdicts", []):
        console.print(line, markup=False)


def _best_landmark_table(best: dict[str, Any]) -> Any:
    """Signed spread to each pattern's best-tracked landmark, per layer and group."""
    from rich.table import Table

    centre = ", ".join(best.get("centre_landmarks", [])) or "-"
    table = Table(
        "layer",
        "landmarks",
        "patterns",
        "frozen at prior mu",
        "fixed point",
        "perfect detector",
        "patterns / frozen",
        "beat frozen",
        "n",
        title="signed spread to each pattern's best-tracked landmark (lower is better; "
        f"centre: {centre}; the perfect detector of the landmark scores 0)",
    )
    rows = [(row["layer"], row) for row in best["per_layer"]] + [("overall", best["overall"])]
    for layer, row in rows:
        for group in ("all", "centre", "off_centre"):
            cells = row.get(group, {})
            if not cells.get("n_patterns"):
                continue
            table.add_row(
                layer,
                group.replace("_", "-"),
                _fmt(cells["patterns"]),
                _fmt(cells["frozen_prior"]),
                _fmt(cells["fixed_point"]),
                _fmt(cells["perfect_part_detector"]),
                f"{cells['patterns_over_frozen']:.2f}",
                f"{cells['beat_frozen']:.0%}",
                str(cells["n_patterns"]),
            )
    return table


@evaluate_app.command("parts")
def parts(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    part: str = typer.Option(..., "--part", help="Semantic part (a keypoint name)."),
    annotations: Path = typer.Option(
        ..., "--annotations", help="Annotation JSON (or dataset folder) with part keypoints."
    ),
    shots: Path | None = typer.Option(
        None,
        "--shots",
        help="Shots file (1-3 training images); default: pick --n-shots training images "
        "in different poses.",
    ),
    n_shots: int = typer.Option(3, "--n-shots", min=1, max=3, help="Shots to pick."),
    label: Label = None,
    split: str = typer.Option("test", "--split", help="Split of the test objects."),
    orientation: str = typer.Option(
        "appearance",
        "--orientation",
        help="Image or mirror at localisation: appearance, votes or graph.",
    ),
    appearance_map: str = APPEARANCE_MAP,
    draws: int = typer.Option(
        0,
        "--draws",
        min=0,
        help="Score this many seeded random shot sets from the train split (mean ± sd); "
        "0: one shot set (--shots or the farthest-point pick).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the first draw (draw d uses seed+d)."),
    shot_prior_sigma: _ShotPriorSigma = None,
    shot_prior_sweep: _ShotPriorSweep = "",
    device: Device = "auto",
    cache_dir: CacheDir = None,
    model_file: ModelFile = None,
    details: bool = typer.Option(False, "--details", help="With --json: per-image results."),
    as_json: Json = False,
) -> None:
    """Few-shot part localisation: AOG vs raw filters, NN transfer, static priors and the
    graph-ablation controls (the AOG's appearance without the graph's votes)."""
    from explgraph.cli.usage import usage_error
    from queries.aog import SelectionSettings

    if draws and shots is not None:
        raise usage_error("give either --shots or --draws, not both", ctx)
    settings = SelectionSettings(orientation=orientation, appearance_map=appearance_map)
    controls = _control_settings(shot_prior_sigma, shot_prior_sweep)
    run = _PartsRun(
        part, annotations, label, split, shots, n_shots, draws, seed, settings, controls
    )
    cli = state(ctx)
    with cli.open_store(read_only=True) as store:
        loaded = open_graph(
            store, model_id, cache_dir=cache_dir, device=device, model_file=model_file, ctx=ctx
        )
        summary = _parts_summary(store, loaded, run, details=details, progress=cli.progress)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif draws:
        print_draws(summary)
    else:
        print_parts(summary)


def _control_settings(sigma: float | None, sweep: str) -> ControlSettings:
    """``--shot-prior-sigma`` (default: the dev-chosen σ) and ``--shot-prior-sweep`` (a comma
    list of positive fractions)."""
    from explgraph.core.errors import InputError
    from queries.aog.controls import SHOT_PRIOR_SIGMA, ControlSettings

    try:
        values = tuple(float(v) for v in sweep.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"--shot-prior-sweep {sweep!r}: give fractions of the crop side, e.g. 0.05,0.1,0.2"
        ) from None
    if any(v <= 0 for v in values):
        raise InputError(f"--shot-prior-sweep {sweep!r}: every σ must be above 0")
    return ControlSettings(SHOT_PRIOR_SIGMA if sigma is None else sigma, values)


@dataclass(frozen=True)
class _PartsRun:
    """What ``evaluate parts`` was asked."""

    part: str
    annotations: Path
    label: str | None
    split: str
    shots: Path | None
    n_shots: int
    draws: int
    seed: int
    settings: SelectionSettings
    controls: ControlSettings


def _parts_summary(
    store: GraphStore, loaded: LoadedGraph, run: _PartsRun, *, details: bool, progress: Progress
) -> dict[str, Any]:
    """The report of ``evaluate parts``: over seeded shot draws (``--draws N``), or for one
    shot set (``--shots``, or the farthest-point pick from the training split)."""
    from miner.data.folder import load_dataset
    from queries.aog import evaluate_parts, pick_shots, read_shots
    from queries.aog.evaluate import evaluate_parts_draws

    chosen = chosen_label(run.label, loaded)
    dataset = load_dataset(run.annotations)  # a .json file or an annotated folder
    train = list(dataset.select(split="train", label=chosen).records)
    tests = list(dataset.select(split=run.split, label=chosen).records)
    if run.draws:
        drawn = evaluate_parts_draws(
            store,
            loaded,
            run.part,
            train,
            tests,
            draws=run.draws,
            seed=run.seed,
            n_shots=run.n_shots,
            settings=run.settings,
            controls=run.controls,
            progress=progress,
        )
        return drawn.to_dict(details=details)
    if run.shots is not None:
        shot_set = read_shots(run.shots, run.part)
    else:
        shot_set = pick_shots(train, run.part, run.n_shots, loaded.input_size)
    report = evaluate_parts(
        store,
        loaded,
        shot_set,
        tests,
        settings=run.settings,
        controls=run.controls,
        progress=progress,
    )
    return report.to_dict(details=details)


def print_parts(result: dict[str, Any]) -> None:
    """The part-localisation report as one table."""
    from rich.table import Table

    from explgraph.cli.console import output_console

    table = Table(
        "method",
        "normalised distance",
        "AOG / method",
        title=f"few-shot localisation of {result['part']!r} on {result['model_id']} "
        f"({result['n_shots']} shots, {result['n_test']} test objects; lower is better)",
    )
    accuracy = result.get("left_right_accuracy", {})
    table.add_column("left/right accuracy")
    table.add_row("AOG (explanatory graph)", _fmt(result["aog"]), "1.00", _fmt(accuracy.get("aog")))
    for name, value in result["baselines"].items():
        table.add_row(name, _fmt(value), f"{result['ratios'][name]:.2f}", _fmt(accuracy.get(name)))
    for name, value in result.get("references", {}).items():
        table.add_row(
            f"{name} (reference: reads the truth)", _fmt(value), "-", _fmt(accuracy.get(name))
        )
    console = output_console()
    console.print(table)
    _print_graph_lines(console, result)


def _print_graph_lines(console: Any, result: dict[str, Any]) -> None:
    """What the graph adds over the appearance controls, and how often each reading choice
    implies the annotated facing."""
    from queries.aog.controls import contribution_verdict

    verdict = result.get("contribution_verdict") or contribution_verdict(
        result["graph_contribution"], result["best_control"]
    )
    console.print(
        f"{verdict} (shot prior σ = {result['shot_prior_sigma']:g} of the crop)", markup=False
    )
    mirror = result.get("mirror_choice", {})
    accuracy = mirror.get("accuracy", mirror)
    if accuracy:
        cells = ", ".join(f"{name} {_fmt(value)}" for name, value in accuracy.items())
        console.print(
            f"reading choice agrees with the annotated facing (a coin: 0.5): {cells}",
            markup=False,
        )


def print_draws(result: dict[str, Any]) -> None:
    """Part localisation over shot draws: a per-draw table and mean ± sd per method."""
    from rich.table import Table

    from explgraph.cli.console import output_console

    console = output_console()
    summary = result["summary"]
    methods = list(summary)
    per_draw = Table(
        "draw seed",
        *methods,
        title=f"few-shot localisation of {result['part']!r} on {result['model_id']}: "
        f"{result['n_draws']} draws from seed {result['seed']}, {result['n_test']} test objects "
        "(normalised distance, lower is better)",
    )
    for draw_seed, row in zip(result["draw_seeds"], result["per_draw"], strict=True):
        values = [
            row["aog"],
            *(row["baselines"].get(m, row["references"].get(m)) for m in methods[1:]),
        ]
        per_draw.add_row(str(draw_seed), *(_fmt(v) for v in values))
    console.print(per_draw)
    table = Table("method", "mean ± sd", "min - max", "left/right accuracy", "AOG / method")
    for name, row in summary.items():
        label = f"{name} (reference: reads the truth)" if row["reference_only"] else name
        ratio = summary["aog"]["mean"] / row["mean"] if row["mean"] > 0 else float("nan")
        table.add_row(
            label,
            f"{row['mean']:.4f} ± {row['sd']:.4f}",
            f"{row['min']:.4f} - {row['max']:.4f}",
            f"{row['left_right']:.2f}",
            f"{ratio:.2f}",
        )
    console.print(table)
    console.print(
        f"AOG / best baseline ({result['best_baseline']}): {result['aog_over_best_baseline']:.2f}"
    )
    _print_graph_lines(console, result)
    for name, row in result.get("shot_prior_sweep", {}).items():
        console.print(
            f"dev sweep {name}: {row['mean']:.4f} ± {row['sd']:.4f} "
            f"(left/right {row['left_right']:.2f})",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` group."""
    app.add_typer(evaluate_app, name="evaluate")


__all__ = ["print_draws", "print_parts", "print_stability", "register"]
