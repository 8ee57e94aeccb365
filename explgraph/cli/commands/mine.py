"""``explgraph mine`` (learn a model's explanatory graph into the store) and ``explgraph show``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.options import CacheDir, Device, Json
from explgraph.cli.state import state

#: collectives of a ``torchrun`` mine may wait this long (rank 0 extracting features)
PROCESS_GROUP_TIMEOUT = timedelta(hours=24)

# The options only ``mine`` declares, one line each in its signature.
_Model = Annotated[
    str,
    typer.Argument(help="torchvision name (vgg16), checkpoint file, or package.module:callable."),
]
_Images = Annotated[
    Path, typer.Option("--images", help="Image folder, CUB root, or synthetic set.")
]
_Annotations = Annotated[
    Path | None,
    typer.Option("--annotations", help="Annotation JSON (boxes, parts, labels, splits)."),
]
_Weights = Annotated[
    str | None,
    typer.Option("--weights", help="Weights enum name (IMAGENET1K_V1) or state-dict file."),
]
_Layers = Annotated[
    str | None,
    typer.Option(
        "--layers", help="Comma-separated layer names, bottom to top (default: per family)."
    ),
]
_Label = Annotated[
    str | None,
    typer.Option("--label", help="Mine only images of this category (one graph per category)."),
]
_Split = Annotated[
    str | None, typer.Option("--split", help="Use only this split ('' for all images).")
]
_MaxImages = Annotated[int | None, typer.Option("--max-images", min=2, help="Use at most N.")]
_Background = Annotated[
    Path | None,
    typer.Option("--background", help="Images without the object, for the normalisation."),
]
_ModelId = Annotated[
    str | None,
    typer.Option("--model-id", help="Id in the store (default: <architecture>-<label>)."),
]
_Iterations = Annotated[int, typer.Option("--iterations", min=0, help="EM iterations per layer.")]
_Parents = Annotated[int, typer.Option("--parents", min=1, help="Parents per pattern (M).")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed of the initialisation.")]
_BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]
_FiresPerImage = Annotated[
    int,
    typer.Option("--fires-per-image", min=1, help="Best patterns stored per image and layer."),
]
_Force = Annotated[bool, typer.Option("--force", help="Re-write even if already stored.")]
_Boxes = Annotated[
    str,
    typer.Option("--boxes", help="Boxes past the image border: clip, or refuse (skip the image)."),
]
_OutsideRoot = Annotated[
    bool,
    typer.Option("--allow-outside-root", help="Let annotation paths leave the image folder."),
]
_MaxMemory = Annotated[
    str | None,
    typer.Option("--max-memory", help="Refuse runs estimated above this (8G; default: free RAM)."),
]
_ChunkSize = Annotated[int, typer.Option("--chunk-size", min=1, help="Images per learning step.")]
_Density = Annotated[
    float | None,
    typer.Option("--density", min=0.0001, max=1.0, help="Patterns per map unit, every layer."),
]


def _split_layers(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _settings_overrides(
    iterations: int, parents: int, seed: int, chunk_size: int, density: float | None
) -> dict[str, Any]:
    """The learning settings the command line changes (defaults left out of the run digest)."""
    return {
        "iterations": iterations,
        "parents": parents,
        "seed": seed,
        **({"chunk_size": chunk_size} if chunk_size != 32 else {}),
        **({"density_top": density, "density_low": density} if density else {}),
    }


def mine(
    ctx: typer.Context,
    model: _Model,
    images: _Images,
    annotations: _Annotations = None,
    weights: _Weights = None,
    layers: _Layers = None,
    label: _Label = None,
    split: _Split = "train",
    max_images: _MaxImages = None,
    background: _Background = None,
    model_id: _ModelId = None,
    device: Device = "auto",
    iterations: _Iterations = 20,
    parents: _Parents = 15,
    seed: _Seed = 0,
    batch_size: _BatchSize = 32,
    fires_per_image: _FiresPerImage = 20,
    cache_dir: CacheDir = None,
    force: _Force = False,
    boxes: _Boxes = "clip",
    allow_outside_root: _OutsideRoot = False,
    max_memory: _MaxMemory = None,
    chunk_size: _ChunkSize = 32,
    density: _Density = None,
) -> None:
    """Learn the explanatory graph of MODEL on the images and write it into the store."""
    from explgraph.core.progress import NULL_PROGRESS
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
        settings_overrides=_settings_overrides(iterations, parents, seed, chunk_size, density),
        batch_size=batch_size,
        fires_per_image=fires_per_image,
        cache_dir=cache_dir or default_cache_dir(),
        force=force,
        boxes=boxes,
        allow_outside_root=allow_outside_root,
        max_memory=max_memory,
    )
    progress = cli.progress if rank == 0 else NULL_PROGRESS
    summary = run_mine(
        request, cli.store_spec, store_settings=cli.store_settings, progress=progress
    )
    if rank == 0:
        typer.echo(summary.text())


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

    from miner.models.loading import resolve_device

    use_cuda = resolve_device(device).type == "cuda"
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
    as_json: Json = False,
) -> None:
    """Describe a mined model: parameters, layers with explained share, node and edge counts,
    and its explainer networks (explain-net evaluate --model)."""
    from queries.canned import run_canned

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
        explainers = run_canned(store, "explained-layers", {"model": model_id})
    per_layer = {row["layer"]: row["patterns"] for row in counts}
    for row in layers:
        row["patterns"] = per_layer.get(row["layer"], 0)
    if as_json:
        described = {k: v for k, v in described.items() if k != "layer_summary"}
        shown = {"model": described, "layers": layers, "explainers": explainers}
        typer.echo(json.dumps(shown, default=str, indent=2))
        return
    _print_model(described, layers)
    if explainers:
        _print_explainers(explainers)


def _print_explainers(explainers: list[dict[str, Any]]) -> None:
    """One row per explainer network: its layer, p, reconstruction error, agreement, purity."""
    from rich.table import Table

    from explgraph.cli.console import output_console

    def number(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    table = Table("explained layer", "p (mean)", "reconstruction error", "top-1 agreement")
    table.add_column("purity (explainer / raw)")
    for row in explainers:
        table.add_row(
            str(row["layer"]) + (" (control)" if row["control"] else ""),
            number(row["p_mean"], ".3f"),
            number(row["reconstruction_error"], ".4f"),
            number(row["agreement"], ".1%"),
            f"{number(row['mean_purity'], '.3f')} / {number(row['raw_mean_purity'], '.3f')}",
        )
    output_console().print(table)


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
