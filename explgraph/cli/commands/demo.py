"""``explgraph demo``: the whole job on the synthetic parts dataset with the bundled toy CNN."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.options import CacheDir, Device
from explgraph.cli.state import CliState, state

if TYPE_CHECKING:
    from explgraph.workflows.mine import MineRequest

DEMO_QUERIES: list[tuple[str, str]] = [
    (
        "How many part patterns did each layer's filters learn?",
        "MATCH (l:Layer)-[:HAS_FILTER]->(f:Filter)-[:HAS_PATTERN]->(p:Pattern) "
        "WHERE l.model_id = $model RETURN l.name AS layer, count(DISTINCT f) AS filters, "
        "count(p) AS patterns ORDER BY layer",
    ),
    (
        "Which pattern pairs co-activate most strongly across layers, and how far apart?",
        "MATCH (c:Pattern)-[r:PARENT]->(p:Pattern) WHERE c.model_id = $model "
        "RETURN c.pattern_id AS child, p.pattern_id AS parent, r.weight AS weight, "
        "r.dx AS dx_px, r.dy AS dy_px ORDER BY weight DESC LIMIT 5",
    ),
    (
        "Which top-layer patterns fire most strongly on the first training image, and where?",
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE f.model_id = $model AND "
        "i.image_id = $image AND p.layer = $layer RETURN p.pattern_id AS pattern, "
        "f.x AS x, f.y AS y, f.score AS score ORDER BY score DESC LIMIT 5",
    ),
]


def demo(
    ctx: typer.Context,
    n: int = typer.Option(480, "--n", min=8, help="Synthetic images to generate (all labels)."),
    label: str = typer.Option("bird", "--label", help="Category whose graph is mined."),
    size: int = typer.Option(128, "--size", help="Synthetic image side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed of the dataset and of learning."),
    iterations: int = typer.Option(10, "--iterations", min=0, help="EM iterations per layer."),
    device: Device = "auto",
    cache_dir: CacheDir = None,
    table_md: Path | None = typer.Option(
        None,
        "--table-md",
        help="Also write the stability report it prints as Markdown to this file (the "
        "README's quick-start table: tools/readme_table.py puts it there).",
        dir_okay=False,
    ),
) -> None:
    """Generate the synthetic dataset, mine the toy CNN into the store, and show what it found."""
    from explgraph.cli.console import output_console
    from explgraph.workflows.mine import run_mine
    from explgraph.workflows.toy import toy_request
    from miner.data.synthetic import write_synthetic

    cli = state(ctx)
    console = output_console()
    cache = cache_dir or default_cache_dir()
    data = cache / f"demo-synth-n{n}-s{size}-seed{seed}"
    if not (data / "annotations.json").exists():
        console.print(f"generating {n} synthetic images into {data}")
        write_synthetic(data, n, size=size, seed=seed, progress=cli.progress)
    request = toy_request(data, cache, iterations=iterations, seed=seed, label=label, device=device)
    model_id = str(request.model_id)
    summary = run_mine(
        request, cli.store_spec, store_settings=cli.store_settings, progress=cli.progress
    )
    console.print(summary.text())
    console.print(f"store: {cli.store_spec}")
    report = _evaluate(cli, model_id, request)
    if table_md is not None:
        from explgraph.cli.stability_markdown import stability_markdown

        table_md.write_text(stability_markdown(report))
    _ask_demo_queries(cli, model_id)
    console.print(
        f"\nTry your own: explgraph --store {cli.store_spec} query "
        '"MATCH (p:Pattern) RETURN p.layer AS layer, avg(p.sigma) AS spread"'
    )


def _evaluate(cli: CliState, model_id: str, request: MineRequest) -> dict[str, Any]:
    """Print the stability evaluation of ``model_id`` on the training images it was mined on,
    and return it (the report as a dict)."""
    from explgraph.cli.commands.evaluate import print_stability
    from explgraph.cli.console import output_console
    from miner.data.folder import load_dataset
    from queries.evaluate_stability import evaluate_stability
    from queries.loaded import LoadedGraph

    if not cli.quiet:
        output_console().print(
            "evaluating: every layer is learned once more without parent links, and the "
            "patterns are also read at their initialisation; these controls show what "
            "learning and the parent links each add (docs/method.md §7.3)",
            highlight=False,
        )
    chosen = load_dataset(request.images).select(split="train", label=request.label)
    with cli.open_store(read_only=True) as store:
        loaded = LoadedGraph.open(
            store, model_id, cache_dir=request.cache_dir, device=request.device
        )
        report = evaluate_stability(loaded, list(chosen.records), progress=cli.progress)
    result = report.to_dict()
    print_stability(result)
    return result


def _ask_demo_queries(cli: CliState, model_id: str) -> None:
    """Run :data:`DEMO_QUERIES` on the mined model, each under its question and Cypher."""
    from rich.markup import escape

    from explgraph.cli.commands.store import OutputFormat, render_rows
    from explgraph.cli.console import output_console

    console = output_console()
    with cli.open_store(read_only=True) as store:
        first_image = store.query(
            "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE f.model_id = $model "
            "RETURN i.image_id AS image, i.path AS path ORDER BY path LIMIT 1",
            {"model": model_id},
        )
        layers = store.describe_model(model_id).get("layers") or []
        params = {
            "model": model_id,
            "image": first_image[0]["image"] if first_image else "",
            "layer": layers[-1] if layers else "",
        }
        for question, cypher in DEMO_QUERIES:
            console.print(
                f"\n[bold]{question}[/bold]\n[dim]{escape(cypher)}[/dim]", highlight=False
            )
            typer.echo(render_rows(store.query(cypher, params), OutputFormat.table))


def register(app: typer.Typer) -> None:
    """Add ``demo``."""
    app.command("demo")(demo)


__all__ = ["DEMO_QUERIES", "register"]
