"""``explgraph mine`` (learn a model's explanatory graph into the store) and ``explgraph show``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.state import state
from explgraph.core.progress import Progress

#: collectives of a ``torchrun`` mine may wait this long (rank 0 extracting features)
PROCESS_GROUP_TIMEOUT = timedelta(hours=24)


def _split_layers(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def mine(
    ctx: typer.Context,
    model: str = typer.Argument(
        ..., help="torchvision name (vgg16), checkpoint file, or package.module:callable."
    ),
    images: Path = typer.Option(..., "--images", help="Image folder, CUB root, or synthetic set."),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Annotation JSON (boxes, parts, labels, splits)."
    ),
    weights: str | None = typer.Option(
        None, "--weights", help="Weights enum name (IMAGENET1K_V1) or state-dict file."
    ),
    layers: str | None = typer.Option(
        None, "--layers", help="Comma-separated layer names, bottom to top (default: per family)."
    ),
    label: str | None = typer.Option(
        None, "--label", help="Mine only images of this category (one graph per category)."
    ),
    split: str | None = typer.Option(
        "train", "--split", help="Use only this split ('' for all images)."
    ),
    max_images: int | None = typer.Option(None, "--max-images", min=2, help="Use at most N."),
    background: Path | None = typer.Option(
        None, "--background", help="Images without the object, for the normalisation."
    ),
    model_id: str | None = typer.Option(
        None, "--model-id", help="Id in the store (default: <architecture>-<label>)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    iterations: int = typer.Option(20, "--iterations", min=0, help="EM iterations per layer."),
    parents: int = typer.Option(15, "--parents", min=1, help="Parents per pattern (M)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per forward pass."),
    fires_per_image: int = typer.Option(
        20, "--fires-per-image", min=1, help="Best patterns stored per image and layer."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Feature cache and checkpoints (default: $EXPLGRAPH_CACHE)."
    ),
    force: bool = typer.Option(False, "--force", help="Re-write even if already stored."),
    boxes: str = typer.Option(
        "clip", "--boxes", help="Boxes past the image border: clip, or refuse (skip the image)."
    ),
    allow_outside_root: bool = typer.Option(
        False, "--allow-outside-root", help="Let annotation paths leave the image folder."
    ),
    max_memory: str | None = typer.Option(
        None, "--max-memory", help="Refuse runs estimated above this (8G; default: free RAM)."
    ),
    chunk_size: int = typer.Option(32, "--chunk-size", min=1, help="Images per learning step."),
    density: float | None = typer.Option(
        None, "--density", min=0.0001, max=1.0, help="Patterns per map unit, every layer."
    ),
) -> None:
    """Learn the explanatory graph of MODEL on the images and write it into the store."""
    from explgraph.workflows.mine import MineRequest, run_mine

    cli = state(ctx)
    rank, device = _join_torchrun(device)
    request = MineRequest(
        model=model,
        weights=weights,
        images=images,
        annotations=annotations,
        layers=_split_layers(layers),
        label=label,
        split=split or None,
        max_images=max_images,
        background=background,
        model_id=model_id,
        device=device,
        settings_overrides={
            "iterations": iterations,
            "parents": parents,
            "seed": seed,
            **({"chunk_size": chunk_size} if chunk_size != 32 else {}),
            **({"density_top": density, "density_low": density} if density else {}),
        },
        batch_size=batch_size,
        fires_per_image=fires_per_image,
        cache_dir=cache_dir or default_cache_dir(),
        force=force,
        boxes=boxes,
        allow_outside_root=allow_outside_root,
        max_memory=max_memory,
    )
    summary = run_mine(
        request,
        cli.store_spec,
        store_settings=cli.store_settings,
        progress=cli.progress if rank == 0 else _quiet(),
    )
    if rank == 0:
        typer.echo(summary.text())


def _quiet() -> Progress:
    from explgraph.core.progress import NULL_PROGRESS

    return NULL_PROGRESS


def _join_torchrun(device: str) -> tuple[int, str]:
    """Under ``torchrun`` (WORLD_SIZE > 1) join the process group; return (rank, device).

    Data-parallel mining: every rank learns on its shard of the images and all-reduces the
    E-step sums (see :mod:`miner.graph.distributed`); rank 0 extracts features and writes.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, device
    import torch
    import torch.distributed as dist

    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        # rank 0 extracts the features while the others wait at a barrier: at the paper's scale
        # that takes longer than the default 30-minute collective timeout
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    elif device == "auto":
        device = "cpu"
    return dist.get_rank(), device


def show(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Model id in the store."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a mined model: parameters, layers with explained share, node and edge counts."""

    with state(ctx).open_store(read_only=True) as store:
        described = store.describe_model(model_id)
        layers = store.query(
            "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS layer, l.depth AS depth, "
            "l.height AS height, l.width AS width, l.stride AS stride, l.channels AS filters, "
            "l.explained_share AS explained_share, l.interpretable AS interpretable "
            "ORDER BY depth",
            {"m": model_id},
        )
        counts = store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.layer AS layer, count(*) AS patterns",
            {"m": model_id},
        )
    per_layer = {row["layer"]: row["patterns"] for row in counts}
    for row in layers:
        row["patterns"] = per_layer.get(row["layer"], 0)
    if as_json:
        described = {k: v for k, v in described.items() if k != "layer_summary"}
        typer.echo(json.dumps({"model": described, "layers": layers}, default=str, indent=2))
        return
    _print_model(described, layers)


def _print_model(described: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from explgraph.cli.console import output_console

    console = output_console()
    params = described["params"]
    console.print(
        f"[bold]{described['model_id']}[/bold]  {described.get('architecture')} "
        f"({described.get('source')}, weights {described.get('weights')})  "
        f"status {described.get('status')}  images {described.get('n_images')}  "
        f"seed {described.get('seed')}  normalisation {described.get('normalisation')}"
    )
    spec = params.get("interpretable")
    if described.get("interpretable") and spec:
        console.print(
            f"interpretable CNN: filter loss on {spec.get('layer')} (beta {spec.get('beta')}, "
            f"tau {spec.get('tau_value', spec.get('tau'))}, weight {spec.get('weight')})"
        )
    settings = params.get("settings", {})
    if settings:
        console.print(
            "settings: "
            + ", ".join(f"{k}={settings[k]}" for k in ("iterations", "parents", "candidate_pool"))
        )
    table = Table("layer", "map", "stride", "filters", "patterns", "explained share")
    for row in layers:
        share = row.get("explained_share")
        table.add_row(
            str(row["layer"]) + (" (interpretable)" if row.get("interpretable") else ""),
            f"{row['height']}x{row['width']}",
            f"{row['stride']:g}",
            str(row["filters"]),
            str(row["patterns"]),
            "-" if share is None else f"{share:.1%}",
        )
    console.print(table)
    counts = {k: described.get(k) for k in described if k.startswith("n_") and k != "n_images"}
    if counts:
        console.print(", ".join(f"{k[2:]}: {v}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    """Add ``mine`` and ``show`` to the root app."""
    app.command("mine")(mine)
    app.command("show")(show)


__all__ = ["register"]
