"""``explgraph train``: fit the toy VGG to the synthetic parts dataset (or a labelled dataset),
optionally as an interpretable CNN, or fine-tune a torchvision model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from explgraph.cli.state import state
from explgraph.cli.usage import usage_error
from explgraph.core.progress import NULL_PROGRESS

if TYPE_CHECKING:
    from miner.data.records import Dataset
    from miner.models.training import TrainConfig, TrainResult

# The options of ``train``, one line each in its signature.
_Data = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Labelled dataset (image folder with annotations.json, CUB root, annotation file) "
        "with train/test splits. Default: render the synthetic parts dataset in memory.",
    ),
]
_Annotations = Annotated[
    Path | None,
    typer.Option("--annotations", help="Annotation file for a plain image folder given by --data."),
]
_N = Annotated[int, typer.Option("--n", help="Synthetic images to render (without --data).")]
_ImageSize = Annotated[int, typer.Option("--image-size", help="Side of the synthetic images.")]
_Epochs = Annotated[int, typer.Option("--epochs", help="Passes over the training crops.")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed of the data, the init and the batches.")]
_InputSize = Annotated[int, typer.Option("--input-size", help="Side of the crops the net sees.")]
_BatchSize = Annotated[int, typer.Option("--batch-size", help="Crops per optimisation step.")]
_Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (one-cycle schedule).")]
_Threads = Annotated[int, typer.Option("--threads", help="CPU threads for torch.")]
_Out = Annotated[
    Path, typer.Option("--out", help="Checkpoint to write (load it with --model PATH).")
]
_Interpretable = Annotated[
    bool,
    typer.Option(
        "--interpretable",
        help="Train an interpretable CNN (Zhang et al. CVPR 2018): part-template mask and filter "
        "loss on one conv layer (--layer).",
    ),
]
_Layer = Annotated[
    str | None,
    typer.Option(
        "--layer",
        help="The interpretable conv layer (default: the top conv, block4_conv2; features.18 "
        "with --finetune mobilenet_v2).",
    ),
]
_Beta = Annotated[float, typer.Option("--beta", help="Template sharpness (the paper's 4).")]
_Tau = Annotated[
    float | None, typer.Option("--tau", help="Template scale (default: the paper's 0.5 / n^2).")
]
_FilterLossWeight = Annotated[
    float,
    typer.Option(
        "--filter-loss-weight", help="lambda: total loss = task + lambda * sum of filter losses."
    ),
]
_Finetune = Annotated[
    str | None,
    typer.Option(
        "--finetune",
        help="Fine-tune this torchvision model (mobilenet_v2) from --weights instead of training "
        "the toy CNN from scratch.",
    ),
]
_Weights = Annotated[
    str, typer.Option("--weights", help="Weights of the --finetune model (torchvision enum).")
]
_WarmStart = Annotated[
    Path | None,
    typer.Option(
        "--warm-start",
        help="Start from this toy checkpoint (trained on the same data) instead of a fresh net; "
        "with --interpretable this is the paper's protocol (fine-tune with the layer added).",
    ),
]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def train(
    ctx: typer.Context,
    data: _Data = None,
    annotations: _Annotations = None,
    n: _N = 2400,
    image_size: _ImageSize = 128,
    epochs: _Epochs = 8,
    seed: _Seed = 0,
    input_size: _InputSize = 96,
    batch_size: _BatchSize = 64,
    lr: _Lr = 3e-3,
    threads: _Threads = 2,
    out: _Out = Path("toy_vgg.pt"),
    interpretable: _Interpretable = False,
    layer: _Layer = None,
    beta: _Beta = 4.0,
    tau: _Tau = None,
    filter_loss_weight: _FilterLossWeight = 1.0,
    finetune: _Finetune = None,
    weights: _Weights = "IMAGENET1K_V1",
    warm_start: _WarmStart = None,
    quiet: _Quiet = False,
) -> None:
    """Train the toy VGG-style CNN on object crops, report test accuracy, save a checkpoint.

    --interpretable adds the part-template mask and filter loss of interpretable CNNs to one conv
    layer; --finetune mobilenet_v2 fine-tunes a torchvision model from its ImageNet weights.
    """
    from miner.models.training import TrainConfig, finetune_torchvision, train_toy_model

    cli = state(ctx)
    progress = NULL_PROGRESS if quiet or cli.quiet else cli.progress
    if finetune and warm_start is not None:
        raise usage_error("--warm-start is for the toy CNN; --finetune starts from ImageNet", ctx)
    interpretable_layer = _interpretable_layer(interpretable, layer, finetune)
    dataset = _labelled_dataset(data, annotations)
    config = TrainConfig(
        n=n,
        image_size=image_size,
        input_size=input_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        threads=threads,
        interpretable=interpretable_layer,
        beta=beta,
        tau=tau,
        filter_loss_weight=filter_loss_weight,
        warm_start=str(warm_start) if warm_start is not None else None,
    )
    command = _reproducing_command(config, data, annotations, out)
    if not finetune:
        result = train_toy_model(out, config, dataset, progress=progress, command=command)
    else:
        command += ["--finetune", finetune, "--weights", weights]
        result = finetune_torchvision(
            finetune, weights, out, config, dataset, progress=progress, command=command
        )
    _print_result(result)


def _interpretable_layer(
    interpretable: bool, layer: str | None, finetune: str | None
) -> str | None:
    """The conv layer to make interpretable (None: an ordinary CNN); the default is the top
    conv of the toy CNN, or ``features.18`` of a fine-tuned mobilenet_v2."""
    if layer is not None and not interpretable:
        raise usage_error("--layer names the interpretable layer; add --interpretable")
    if not interpretable:
        return None
    return layer or ("features.18" if finetune else "block4_conv2")


def _labelled_dataset(data: Path | None, annotations: Path | None) -> Dataset | None:
    """The dataset given by ``--data`` (None: the synthetic crops rendered in memory)."""
    if data is None:
        return None
    from miner.data.folder import load_dataset

    return load_dataset(data, annotations)


def _reproducing_command(
    config: TrainConfig, data: Path | None, annotations: Path | None, out: Path
) -> list[str]:
    """The command that reproduces this run, every setting spelled out (kept in the checkpoint).

    ``--finetune`` and ``--weights`` are added by the caller when it fine-tunes.
    """
    command = ["explgraph", "train"]
    if data is not None:
        command += ["--data", str(data)] + (
            ["--annotations", str(annotations)] if annotations else []
        )
    else:
        command += ["--n", str(config.n), "--image-size", str(config.image_size)]
    command += [
        *("--epochs", str(config.epochs), "--seed", str(config.seed)),
        *("--input-size", str(config.input_size), "--batch-size", str(config.batch_size)),
        *("--lr", str(config.lr), "--threads", str(config.threads), "--out", str(out)),
    ]
    if config.interpretable is not None:
        command += ["--interpretable", "--layer", config.interpretable]
        command += ["--beta", str(config.beta)]
        command += ["--tau", str(config.tau)] if config.tau is not None else []
        command += ["--filter-loss-weight", str(config.filter_loss_weight)]
    command += ["--warm-start", config.warm_start] if config.warm_start is not None else []
    return command


def _print_result(result: TrainResult) -> None:
    """Skipped images, accuracies, the interpretable layer's last filter loss, the checkpoint."""
    if result.skipped:
        typer.echo(f"skipped {len(result.skipped)} unreadable images:")
        for path, reason in result.skipped:
            typer.echo(f"  {path}: {reason}")
    typer.echo(
        f"test accuracy {result.test_accuracy:.2%} on {result.n_test} crops "
        f"(train {result.train_accuracy:.2%} on {result.n_train}); "
        f"classes: {', '.join(result.classes)}"
    )
    if result.interpretable is not None:
        spec = result.interpretable
        last = result.history[-1] if result.history else {}
        typer.echo(
            f"interpretable layer {spec.layer} ({spec.height}x{spec.width} maps, "
            f"beta {spec.beta:g}, "
            f"tau {spec.resolved_tau:.4g}); last epoch filter loss "
            f"{last.get('filter_loss', float('nan')):.4f} per filter"
        )
    typer.echo(f"checkpoint: {result.checkpoint}")


def register(app: typer.Typer) -> None:
    """Add ``explgraph train`` to the root app."""
    app.command("train")(train)


__all__ = ["register", "train"]
