"""``explgraph train``: fit the toy VGG to the synthetic parts dataset (or a labelled dataset),
optionally as an interpretable CNN, or fine-tune a torchvision model."""

from __future__ import annotations

from pathlib import Path

import typer

from explgraph.cli.state import state
from explgraph.core.progress import NULL_PROGRESS


def train(
    ctx: typer.Context,
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Labelled dataset (image folder with annotations.json, CUB root, annotation file) "
        "with train/test splits. Default: render the synthetic parts dataset in memory.",
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Annotation file for a plain image folder given by --data."
    ),
    n: int = typer.Option(2400, "--n", help="Synthetic images to render (without --data)."),
    image_size: int = typer.Option(128, "--image-size", help="Side of the synthetic images."),
    epochs: int = typer.Option(8, "--epochs", help="Passes over the training crops."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data, the init and the batches."),
    input_size: int = typer.Option(96, "--input-size", help="Side of the crops the net sees."),
    batch_size: int = typer.Option(64, "--batch-size", help="Crops per optimisation step."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (one-cycle schedule)."),
    threads: int = typer.Option(2, "--threads", help="CPU threads for torch."),
    out: Path = typer.Option(
        Path("toy_vgg.pt"), "--out", help="Checkpoint to write (load it with --model PATH)."
    ),
    interpretable: bool = typer.Option(
        False,
        "--interpretable",
        help="Train an interpretable CNN (Zhang et al. CVPR 2018): part-template mask and filter "
        "loss on one conv layer (--layer).",
    ),
    layer: str | None = typer.Option(
        None,
        "--layer",
        help="The interpretable conv layer (default: the top conv, block4_conv2; features.18 "
        "with --finetune mobilenet_v2).",
    ),
    beta: float = typer.Option(4.0, "--beta", help="Template sharpness (the paper's 4)."),
    tau: float | None = typer.Option(
        None, "--tau", help="Template scale (default: the paper's 0.5 / n^2)."
    ),
    filter_loss_weight: float = typer.Option(
        1.0,
        "--filter-loss-weight",
        help="lambda: total loss = task + lambda * sum of filter losses.",
    ),
    finetune: str | None = typer.Option(
        None,
        "--finetune",
        help="Fine-tune this torchvision model (mobilenet_v2) from --weights instead of training "
        "the toy CNN from scratch.",
    ),
    weights: str = typer.Option(
        "IMAGENET1K_V1", "--weights", help="Weights of the --finetune model (torchvision enum)."
    ),
    warm_start: Path | None = typer.Option(
        None,
        "--warm-start",
        help="Start from this toy checkpoint (trained on the same data) instead of a fresh net; "
        "with --interpretable this is the paper's protocol (fine-tune with the layer added).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the toy VGG-style CNN on object crops, report test accuracy, save a checkpoint.

    --interpretable adds the part-template mask and filter loss of interpretable CNNs to one conv
    layer; --finetune mobilenet_v2 fine-tunes a torchvision model from its ImageNet weights.
    """
    from miner.models.training import TrainConfig, train_toy_model

    cli = state(ctx)
    progress = NULL_PROGRESS if quiet or cli.quiet else cli.progress
    if layer is not None and not interpretable:
        from explgraph.core.errors import InputError

        raise InputError("--layer names the interpretable layer; add --interpretable")
    default_layer = "features.18" if finetune else "block4_conv2"
    dataset = None
    if data is not None:
        from miner.data.folder import load_dataset

        dataset = load_dataset(data, annotations)
    config = TrainConfig(
        n=n,
        image_size=image_size,
        input_size=input_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        threads=threads,
        interpretable=(layer or default_layer) if interpretable else None,
        beta=beta,
        tau=tau,
        filter_loss_weight=filter_loss_weight,
        warm_start=str(warm_start) if warm_start is not None else None,
    )
    # The command that reproduces this run, every setting spelled out, kept in the checkpoint.
    command = ["explgraph", "train"]
    if data is not None:
        command += ["--data", str(data)] + (
            ["--annotations", str(annotations)] if annotations else []
        )
    else:
        command += ["--n", str(n), "--image-size", str(image_size)]
    command += [
        *("--epochs", str(epochs), "--seed", str(seed), "--input-size", str(input_size)),
        *("--batch-size", str(batch_size), "--lr", str(lr), "--threads", str(threads)),
        *("--out", str(out)),
    ]
    if interpretable:
        command += ["--interpretable", "--layer", str(config.interpretable), "--beta", str(beta)]
        command += ["--tau", str(tau)] if tau is not None else []
        command += ["--filter-loss-weight", str(filter_loss_weight)]
    command += ["--warm-start", str(warm_start)] if warm_start is not None else []
    if finetune:
        if warm_start is not None:
            from explgraph.core.errors import InputError

            raise InputError("--warm-start is for the toy CNN; --finetune starts from ImageNet")
        from miner.models.training import finetune_torchvision

        command += ["--finetune", finetune, "--weights", weights]
        result = finetune_torchvision(
            finetune, weights, out, config, dataset, progress=progress, command=command
        )
    else:
        result = train_toy_model(out, config, dataset, progress=progress, command=command)
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
