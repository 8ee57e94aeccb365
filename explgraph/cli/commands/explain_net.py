"""``explgraph explain-net``: train an explainer network beside a frozen CNN, and measure it.

``train`` attaches an explainer (docs/explainer.md) to one conv layer of MODEL and trains it on
crops of a dataset (default: the synthetic parts dataset rendered in memory), with a checkpoint
per epoch under the cache folder: running the same command again resumes after the last finished
epoch. ``evaluate`` reads an explainer file and prints ``p``, the reconstruction error, the
performer's top-1 agreement and accuracy with its layer replaced by the reconstruction, and the
part purity of the interpretable filters next to the performer's raw filters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from explgraph.cli.options import CacheDir, Device, Force, Json
from explgraph.cli.state import state
from explgraph.core.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    from miner.explainer import AnnotatedCrops, ExplainerCheckpoint
    from queries.explainer import ExplainerReport

explain_net_app = typer.Typer(
    help="Explainer networks: how much of a CNN layer's knowledge part filters can carry.",
    no_args_is_help=True,
)

_Model = Annotated[
    str,
    typer.Argument(help="torchvision name (mobilenet_v2), checkpoint file, or module:callable."),
]
_Layer = Annotated[str, typer.Option("--layer", help="The conv layer (or conv block) to explain.")]
_Weights = Annotated[
    str | None,
    typer.Option("--weights", help="Weights enum name (IMAGENET1K_V1) or state-dict file."),
]
_Data = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Annotated dataset (folder with annotations.json, CUB root, annotation file). "
        "Default: render the synthetic parts dataset in memory.",
    ),
]
_Annotations = Annotated[
    Path | None, typer.Option("--annotations", help="Annotation file for a plain --data folder.")
]
_N = Annotated[int, typer.Option("--n", min=2, help="Synthetic images to render (no --data).")]
_ImageSize = Annotated[int, typer.Option("--image-size", help="Side of the synthetic images.")]
_DataSeed = Annotated[int, typer.Option("--data-seed", help="Seed of the synthetic images.")]
_Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training maps.")]
_BatchSize = Annotated[int, typer.Option("--batch-size", min=2, help="Maps per step.")]
_Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (warm-up, cosine decay).")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed of the initialisation and batches.")]
_Threads = Annotated[int, typer.Option("--threads", min=1, help="CPU threads for torch.")]
_Filters = Annotated[int, typer.Option("--filters", min=1, help="Filters per track.")]
_Hidden = Annotated[
    int, typer.Option("--hidden", min=1, help="Width of the encoder's and decoder's inner conv.")
]
_Tau = Annotated[float, typer.Option("--tau", help="Part templates' scale (filter loss).")]
_FilterLossWeight = Annotated[
    float,
    typer.Option("--filter-loss-weight", help="lambda_f; 0 trains the control (no filter loss)."),
]
_PWeight = Annotated[float, typer.Option("--p-weight", help="lambda_p of the -log p term.")]
_Noise = Annotated[float, typer.Option("--noise", help="Training noise on the mixed tracks.")]
_DiversityWeight = Annotated[
    float,
    typer.Option(
        "--diversity-weight",
        help="lambda_d of the interpretable filters' overlap (keeps them on different parts).",
    ),
]
_Out = Annotated[Path, typer.Option("--out", help="Explainer file to write.")]
_Explainer = Annotated[Path, typer.Argument(help="An explainer file (explain-net train --out).")]
_StoreUnder = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Also store the report in the store, as an explainer of this stored model (the "
        "performer mined into the store); replaces that layer's explainer there.",
    ),
]
_TopK = Annotated[int, typer.Option("--top-k", min=1, help="Images per filter for purity.")]


@explain_net_app.command("train")
def train(
    ctx: typer.Context,
    model: _Model,
    layer: _Layer,
    weights: _Weights = None,
    data: _Data = None,
    annotations: _Annotations = None,
    n: _N = 800,
    image_size: _ImageSize = 128,
    data_seed: _DataSeed = 0,
    epochs: _Epochs = 60,
    batch_size: _BatchSize = 64,
    lr: _Lr = 3e-3,
    seed: _Seed = 0,
    threads: _Threads = 1,
    filters: _Filters = 32,
    hidden: _Hidden = 64,
    tau: _Tau = 0.1,
    filter_loss_weight: _FilterLossWeight = 0.05,
    p_weight: _PWeight = 0.05,
    noise: _Noise = 0.1,
    diversity_weight: _DiversityWeight = 0.0,
    out: _Out = Path("explainer.pt"),
    cache_dir: CacheDir = None,
    force: Force = False,
    device: Device = "cpu",
) -> None:
    """Train an explainer of one layer of MODEL (frozen) on the train split; write it to --out.

    Re-running the same command resumes after the last finished epoch (checkpoints in the cache).
    """
    from explgraph.cli.environment import default_cache_dir
    from explgraph.cli.outputs import check_output_file
    from miner.explainer import ExplainerConfig, explain_layer, performer_layer, save_explainer
    from miner.models import load_model
    from miner.models.loading import resolve_device

    cli = state(ctx)
    out = check_output_file(out, force=force, store_spec=cli.store_spec, flag="--out")
    loaded = load_model(model, weights, device=device)
    performer_layer(loaded, layer)  # an unknown layer fails before the images are rendered
    synthetic = (n, image_size, data_seed)
    crops = _crops(data, annotations, "train", synthetic, loaded.input_size, cli.progress)
    options = {"filters": filters, "tau": tau, "filter_loss_weight": filter_loss_weight}
    options |= {"hidden": hidden, "p_weight": p_weight, "noise": noise}
    options |= {"diversity_weight": diversity_weight}
    trained = explain_layer(
        loaded, layer, crops, ExplainerConfig(epochs, batch_size, lr, seed=seed, threads=threads),
        weights=weights, options=options, data=_data_record(data, "train", synthetic),
        checkpoint_dir=(cache_dir or default_cache_dir()) / "explainers",
        device=resolve_device(device), progress=cli.progress,
    )  # fmt: skip
    save_explainer(out, trained)
    _print_trained(trained, out)


@explain_net_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    explainer: _Explainer,
    data: _Data = None,
    annotations: _Annotations = None,
    split: Annotated[str, typer.Option("--split", help="Split of the crops measured.")] = "test",
    n: _N = 800,
    image_size: _ImageSize = 128,
    data_seed: _DataSeed = 0,
    top_k: _TopK = 20,
    device: Device = "cpu",
    as_json: Json = False,
    model_id: _StoreUnder = None,
) -> None:
    """Measure an explainer on held-out crops: p, reconstruction, agreement, part purity.

    With --model the figures and each interpretable filter's purity and best part go into the
    store too (Explainer / ExplainerFilter nodes of that model).
    """
    from miner.explainer import load_performer, read_explainer
    from miner.models.loading import resolve_device
    from queries.explainer import explainer_report

    cli = state(ctx)
    progress = NULL_PROGRESS if as_json else cli.progress
    checkpoint = read_explainer(explainer)
    device = str(resolve_device(device))
    loaded, layer = load_performer(checkpoint.performer, device=device)
    crops = _crops(
        data, annotations, split, (n, image_size, data_seed), loaded.input_size, progress
    )
    report = explainer_report(
        loaded, layer, checkpoint.explainer(device), crops, top_k=top_k, device=device
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if model_id is not None:
        stored = _store_report(ctx, report, checkpoint, model_id, explainer)
        if not as_json:
            typer.echo(f"stored: {stored}")


def _store_report(
    ctx: typer.Context,
    report: ExplainerReport,
    checkpoint: ExplainerCheckpoint,
    model_id: str,
    path: Path,
) -> str:
    """Write ``report`` as the explainer of its layer of the stored model; return its id."""
    from graphstore.explainers import write_explainer
    from queries.explainer import explainer_rows

    source: dict[str, object] = {"file": str(path.resolve()), "epochs": checkpoint.epoch}
    source |= {"data": checkpoint.data, "config": checkpoint.config}
    source |= {"performer": checkpoint.performer}
    rows = explainer_rows(report, model_id, n_filters=checkpoint.spec.filters, source=source)
    with state(ctx).open_store() as store:
        return write_explainer(store, rows)


def _crops(
    data: Path | None,
    annotations: Path | None,
    split: str,
    synthetic: tuple[int, int, int],
    size: int,
    progress: Progress,
) -> AnnotatedCrops:
    """The ``split`` crops of ``--data``, or of the synthetic set ``(n, image_size, seed)``."""
    from miner.explainer import record_crops, synthetic_crops

    if data is None:
        n, image_size, seed = synthetic
        return synthetic_crops(n, seed, split, size, image_size=image_size, progress=progress)
    from explgraph.core.errors import InputError
    from miner.data.folder import load_dataset

    records = load_dataset(data, annotations).select(split=split).records
    if not records:
        raise InputError(f"{data} has no '{split}' images; choose another --split or dataset")
    return record_crops(records, size, progress=progress)


def _data_record(
    data: Path | None, split: str, synthetic: tuple[int, int, int]
) -> dict[str, object]:
    """What the explainer was trained on, kept in its file."""
    if data is not None:
        return {"source": str(data.resolve()), "split": split}
    n, image_size, seed = synthetic
    return {"source": "synthetic", "n": n, "image_size": image_size, "seed": seed, "split": split}


def _print_trained(trained: ExplainerCheckpoint, out: Path) -> None:
    last = trained.history[-1]
    kind = "control explainer (no filter loss)" if trained.spec.control else "explainer"
    typer.echo(
        f"{kind} of {trained.spec.layer}: {trained.epoch} epochs, last epoch p {last['p']:.3f}, "
        f"reconstruction {last['reconstruction']:.4f}, filter loss {last['filter_loss']:.3f}"
    )
    typer.echo(f"explainer: {out}")


def _print_report(report: ExplainerReport) -> None:
    p = report.p
    typer.echo(f"layer {report.layer} on {report.n_images} crops" + (" (control)" * report.control))
    typer.echo(
        f"p: mean {p.mean:.3f}, median {p.quantiles['q50']:.3f} "
        f"(q10 {p.quantiles['q10']:.3f}, q90 {p.quantiles['q90']:.3f})"
    )
    typer.echo(f"reconstruction error: {report.reconstruction_error:.4f}")
    typer.echo(f"top-1 agreement with the layer replaced: {report.agreement:.2%}")
    if report.accuracy is not None and report.swapped_accuracy is not None:
        typer.echo(
            f"top-1 accuracy: {report.accuracy:.2%} original, "
            f"{report.swapped_accuracy:.2%} with the layer replaced"
        )
    for name, filters in (("interpretable", report.interpretable), ("raw", report.raw)):
        typer.echo(
            f"{name} filters: mean purity {filters.mean_purity:.3f}, part-pure "
            f"{filters.pure_share:.1%} of {filters.purity.numel()}, dead {filters.dead}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``explain-net`` command group to the root app."""
    app.add_typer(explain_net_app, name="explain-net")


__all__ = ["explain_net_app", "register"]
