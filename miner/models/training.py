"""Train the toy VGG (:mod:`miner.models.toy`) to classify object crops, and save a checkpoint.

The training set is the object-box crops (resized to the input size, aspect not kept: the same
crops the miner feeds the model) of a dataset's ``train`` split, or of the synthetic parts
dataset rendered in memory. Augmentation: random left-right mirroring and shifts of a few
pixels. Runs are deterministic for a seed on the CPU: every random draw comes from seeded
generators and torch's deterministic algorithms are switched on for the run.

With ``TrainConfig.interpretable`` set, one conv layer becomes the interpretable layer of
Zhang et al. (CVPR 2018; :mod:`miner.models.interpretable`): a part-template mask after its ReLU,
and the filter loss added to the cross-entropy; both losses are logged per epoch.
:func:`finetune_torchvision` does the same for a torchvision model from its ImageNet weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from explgraph.core.errors import ImageError, InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.images import crop_to_box, load_image
from miner.data.records import Dataset
from miner.models.checkpoint import load_weights, read_checkpoint, save_checkpoint
from miner.models.interpretable import (
    PAPER_BETA,
    InterpretableSpec,
    attach_mask,
    filter_loss_of,
    make_interpretable,
    mean_filter_loss,
    template_masks,
)
from miner.models.toy import DEFAULT_WIDTHS, TOY_ARCH, ToyVGG, fold_batch_norm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (recorded in the checkpoint)."""

    n: int = 2400  # synthetic images to render (ignored for a given dataset)
    image_size: int = 128  # side of the rendered synthetic images
    test_fraction: float = 0.25  # synthetic test share
    input_size: int = 96
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup: float = 0.15  # share of the steps spent raising the learning rate
    max_shift: int = 4  # pixels of random translation
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    seed: int = 0
    threads: int = 2
    interpretable: str | None = None  # the conv layer to make interpretable (None: ordinary CNN)
    beta: float = PAPER_BETA  # template sharpness
    tau: float | None = None  # template scale; None: the paper's 0.5 / n^2
    filter_loss_weight: float = 1.0  # lambda: total loss = task loss + lambda * sum_f filter loss
    # A toy checkpoint to start from (its BatchNorm is folded, so training goes on without it);
    # None: a fresh BatchNorm net. The paper fine-tunes a pre-trained net with the layer added.
    warm_start: str | None = None


@dataclass
class Crops:
    """Object crops in memory: ``images`` uint8 ``N x 3 x S x S``, ``labels`` class indices."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TrainResult:
    """What a training run produced."""

    checkpoint: Path
    test_accuracy: float
    train_accuracy: float
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    interpretable: InterpretableSpec | None = None


def _stack(crops: Iterable[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(crop, dtype=np.uint8) for crop in crops]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def synthetic_crops(config: TrainConfig, progress: Progress = NULL_PROGRESS) -> tuple[Crops, Crops]:
    """Render the synthetic set in memory and cut its (train, test) object crops."""
    from miner.data.synthetic import CATEGORIES, iter_samples

    index = {name: i for i, name in enumerate(CATEGORIES)}
    images: dict[str, list[Image.Image]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    samples = iter_samples(
        config.n, config.image_size, config.seed, test_fraction=config.test_fraction
    )
    with progress.task("rendering synthetic images", config.n) as bar:
        for sample in samples:
            crop = crop_to_box(Image.fromarray(sample.image), sample.box, config.input_size)
            images[sample.split].append(crop)
            labels[sample.split].append(index[sample.label])
            bar.advance()
    parts = [
        Crops(_stack(images[s]), torch.tensor(labels[s], dtype=torch.long), tuple(CATEGORIES))
        for s in ("train", "test")
    ]
    return parts[0], parts[1]


def dataset_crops(
    dataset: Dataset, input_size: int, progress: Progress = NULL_PROGRESS
) -> tuple[Crops, Crops, list[tuple[str, str]]]:
    """The (train, test) crops of a labelled dataset and the images skipped (path, reason).

    Raises:
        InputError: records without a label or split, or no readable image in a split.
    """
    unlabelled = [r.name for r in dataset.records if r.label is None or r.split is None]
    if unlabelled:
        raise InputError(
            f"{len(unlabelled)} images have no label or no train/test split (first: "
            f"{unlabelled[0]}); training needs both in the annotation file"
        )
    classes = tuple(sorted({str(r.label) for r in dataset.records}))
    index = {name: i for i, name in enumerate(classes)}
    skipped: list[tuple[str, str]] = []
    result = []
    with progress.task("cropping images", len(dataset)) as bar:
        for split in ("train", "test"):
            crops, labels = [], []
            for record in dataset.select(split=split).records:
                bar.advance()
                try:
                    image = load_image(record.path)
                except ImageError as error:
                    skipped.append((str(record.path), str(error)))
                    continue
                crops.append(crop_to_box(image, record.box, input_size))
                labels.append(index[str(record.label)])
            if not crops:
                raise InputError(f"no readable {split} images in {dataset.root}; need some")
            result.append(Crops(_stack(crops), torch.tensor(labels, dtype=torch.long), classes))
    return result[0], result[1], skipped


def _normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _augment(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random mirror and shift of a uint8 batch (padding with edge pixels)."""
    n, _, size, _ = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip.view(n, 1, 1, 1), images.flip(3), images)
    if max_shift <= 0:
        return images
    padded = F.pad(images.float(), (max_shift,) * 4, mode="replicate")
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    rows = (shifts[:, 0].view(n, 1) + torch.arange(size)).view(n, 1, size, 1)
    cols = (shifts[:, 1].view(n, 1) + torch.arange(size)).view(n, 1, 1, size)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channel = torch.arange(3).view(1, 3, 1, 1)
    return padded[batch, channel, rows, cols].to(torch.uint8)


@torch.no_grad()
def accuracy(model: nn.Module, crops: Crops, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on ``crops``."""
    model.eval()
    correct = 0
    for start in range(0, len(crops), batch_size):
        logits = model(_normalise(crops.images[start : start + batch_size]))
        correct += int((logits.argmax(1) == crops.labels[start : start + batch_size]).sum())
    return correct / max(len(crops), 1)


@contextmanager
def reproducible(threads: int, seed: int) -> Iterator[torch.Generator]:
    """Within: ``threads`` torch threads, deterministic algorithms and torch's global seed set
    to ``seed``; yields a batch-order generator (same seed). Both switches are restored after."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


def _make_interpretable(model: nn.Module, config: TrainConfig) -> InterpretableSpec | None:
    """Give ``config.interpretable`` (when set) its template mask and filter loss."""
    if config.interpretable is None:
        return None
    return make_interpretable(
        model,
        config.interpretable,
        config.input_size,
        beta=config.beta,
        tau=config.tau,
        weight=config.filter_loss_weight,
    )


def train_on_crops(
    train: Crops,
    test: Crops,
    config: TrainConfig,
    progress: Progress = NULL_PROGRESS,
) -> tuple[ToyVGG, list[dict[str, float]]]:
    """Fit a toy VGG with BatchNorm to ``train``; return it folded (no BatchNorm) and the history.

    With ``config.interpretable`` the named layer gets the template mask and the filter loss
    (the returned model keeps the mask). See :func:`fit` for the optimiser.
    """
    if len(train) == 0:
        raise InputError("no training images; generate more (--n) or check the dataset")
    with reproducible(config.threads, config.seed) as generator:
        if config.warm_start is not None:
            model = warm_start_model(config.warm_start, train.classes)
        else:
            model = ToyVGG(len(train.classes), config.widths, batch_norm=True)
        spec = _make_interpretable(model, config)
        history = fit(model, train, test, config, generator, progress)
        folded = fold_batch_norm(model)
        if spec is not None:
            # The folded net has no BatchNorm, so the ReLU after the layer is the same module path.
            attach_mask(folded, spec)
        return folded, history


def warm_start_model(path: Path | str, classes: Sequence[str]) -> ToyVGG:
    """The toy VGG of checkpoint ``path`` (BatchNorm-free), to train further on ``classes``.

    Raises:
        ModelError: the checkpoint is unreadable or its weights do not fit a toy VGG.
        InputError: it was trained on other classes.
    """
    checkpoint = read_checkpoint(path)
    if checkpoint.arch != TOY_ARCH:
        raise InputError(
            f"--warm-start {path} holds a '{checkpoint.arch}' model; it must be a toy CNN "
            "checkpoint from `explgraph train`"
        )
    if checkpoint.classes is not None and list(checkpoint.classes) != list(classes):
        raise InputError(
            f"--warm-start {path} was trained on classes {', '.join(checkpoint.classes)}, "
            f"the data has {', '.join(classes)}; start from a checkpoint of the same data"
        )
    widths = tuple(int(w) for w in checkpoint.arch_kwargs.get("widths", DEFAULT_WIDTHS))
    model = ToyVGG(len(classes), widths, batch_norm=False)
    # An interpretable checkpoint's state dict is the plain architecture's (the mask has none).
    load_weights(model, checkpoint.state_dict, str(path))
    return model


def fit(
    model: nn.Module,
    train: Crops,
    test: Crops,
    config: TrainConfig,
    generator: torch.Generator,
    progress: Progress = NULL_PROGRESS,
    parameters: Iterable[nn.Parameter] | None = None,
) -> list[dict[str, float]]:
    """Optimise ``model`` on ``train`` in place; one history row per epoch.

    The loss is the cross-entropy plus, when the model has interpretable layers, their weighted
    filter loss. AdamW with a one-cycle learning-rate schedule; one progress bar per epoch.
    """
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    optimiser = torch.optim.AdamW(
        model.parameters() if parameters is None else parameters,
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        pct_start=config.warmup,
    )
    interpretable = bool(template_masks(model))
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total_task, total_filter = 0.0, 0.0
        with progress.task(f"epoch {epoch}/{config.epochs}", steps_per_epoch) as bar:
            for step in range(steps_per_epoch):
                chosen = order[step * config.batch_size : (step + 1) * config.batch_size]
                images = _augment(train.images[chosen], config.max_shift, generator)
                task_loss = F.cross_entropy(model(_normalise(images)), train.labels[chosen])
                interpretable_loss = filter_loss_of(model)
                loss = task_loss if interpretable_loss is None else task_loss + interpretable_loss
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total_task += float(task_loss.detach()) * len(chosen)
                if interpretable:
                    total_filter += mean_filter_loss(model) * len(chosen)
                bar.advance()
        test_accuracy = accuracy(model, test) if len(test) else float("nan")
        row = {"epoch": epoch, "loss": total_task / len(train), "test_accuracy": test_accuracy}
        message = f"epoch {epoch}: loss {total_task / len(train):.4f}"
        if interpretable:
            row["filter_loss"] = total_filter / len(train)
            message += f", filter loss {row['filter_loss']:.4f} per filter"
        history.append(row)
        progress.log(f"{message}, test accuracy {test_accuracy:.2%}")
    return history


def _crops(
    config: TrainConfig, dataset: Dataset | None, progress: Progress
) -> tuple[Crops, Crops, list[tuple[str, str]]]:
    """(train, test) crops of ``dataset`` (None: the synthetic set) and the images skipped."""
    if dataset is None:
        train, test = synthetic_crops(config, progress)
        return train, test, []
    return dataset_crops(dataset, config.input_size, progress)


@dataclass
class _Trained:
    """A finished training run, before it is saved."""

    model: nn.Module
    train: Crops
    test: Crops
    history: list[dict[str, float]]
    skipped: list[tuple[str, str]]
    spec: InterpretableSpec | None


def _save(
    run: _Trained,
    out: Path | str,
    config: TrainConfig,
    provenance: dict[str, str],
    *,
    arch: str,
    arch_kwargs: dict[str, Any],
    normalisation: tuple[Sequence[float], Sequence[float]],
    command: Sequence[str] | None,
) -> TrainResult:
    """Measure the accuracies, save the checkpoint (``provenance``: the data, and what the model
    was fine-tuned from; ``normalisation``: the input mean and std) and report."""
    test_accuracy = accuracy(run.model, run.test)
    train_accuracy = accuracy(run.model, run.train)
    meta = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        **provenance,
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "n_train": len(run.train),
        "n_test": len(run.test),
        "command": " ".join(command) if command else None,
        "torch": str(torch.__version__),
        "history": run.history,
    }
    path = save_checkpoint(
        out,
        run.model,
        arch=arch,
        arch_kwargs=arch_kwargs,
        classes=run.train.classes,
        input_size=config.input_size,
        mean=normalisation[0],
        std=normalisation[1],
        meta=meta,
        interpretable=run.spec.to_dict() if run.spec is not None else None,
    )
    return TrainResult(
        checkpoint=path,
        test_accuracy=test_accuracy,
        train_accuracy=train_accuracy,
        n_train=len(run.train),
        n_test=len(run.test),
        classes=run.train.classes,
        history=run.history,
        skipped=run.skipped,
        interpretable=run.spec,
    )


def train_toy_model(
    out: Path | str,
    config: TrainConfig = TrainConfig(),
    dataset: Dataset | None = None,
    progress: Progress = NULL_PROGRESS,
    command: Sequence[str] | None = None,
) -> TrainResult:
    """Train the toy VGG on ``dataset`` (or the synthetic set) and save it to ``out``.

    The checkpoint loads with ``load_model(out)`` and records the config, the test accuracy
    and, when given, the command that produced it.

    Example:
        >>> result = train_toy_model("toy.pt", TrainConfig(n=400, epochs=2))
        >>> load_model("toy.pt").name
        'toy_vgg'
    """
    train, test, skipped = _crops(config, dataset, progress)
    model, history = train_on_crops(train, test, config, progress)
    run = _Trained(model, train, test, history, skipped, interpretable_spec(model))
    return _save(
        run,
        out,
        config,
        {"data": "synthetic" if dataset is None else str(dataset.root)},
        arch=TOY_ARCH,
        arch_kwargs=model.arch_kwargs(),
        normalisation=(IMAGENET_MEAN, IMAGENET_STD),
        command=command,
    )


def _replace_classifier(model: nn.Module, num_classes: int) -> None:
    """Swap the model's last ``nn.Linear`` for a fresh one with ``num_classes`` outputs."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError(f"{type(model).__name__} has no Linear classifier to fine-tune")
    last: nn.Linear = model.get_submodule(linears[-1])  # type: ignore[assignment]
    model.set_submodule(linears[-1], nn.Linear(last.in_features, num_classes))


def finetune_torchvision(
    arch: str,
    weights: str,
    out: Path | str,
    config: TrainConfig = TrainConfig(),
    dataset: Dataset | None = None,
    progress: Progress = NULL_PROGRESS,
    command: Sequence[str] | None = None,
) -> TrainResult:
    """Fine-tune a torchvision classifier from ``weights`` on object crops and save it to ``out``.

    The last Linear is replaced for the crops' classes; every weight is trained (BatchNorm in
    training mode) at ``config.input_size``. With ``config.interpretable`` the named layer gets
    the part-template mask and the filter loss, as in :func:`train_on_crops`.

    Raises:
        ModelError: unknown model, or weights neither cached nor downloadable.
    """
    from miner.models.loading import load_model

    loaded = load_model(arch, weights)
    model = loaded.module
    train, test, skipped = _crops(config, dataset, progress)
    with reproducible(config.threads, config.seed) as generator:
        _replace_classifier(model, len(train.classes))
        model.requires_grad_(True)
        spec = _make_interpretable(model, config)
        history = fit(model, train, test, config, generator, progress)
    run = _Trained(model, train, test, history, skipped, spec)
    provenance = {
        "data": "synthetic" if dataset is None else str(dataset.root),
        "finetuned_from": f"{arch} {loaded.weights}",
    }
    return _save(
        run,
        out,
        config,
        provenance,
        arch=loaded.name,
        arch_kwargs={"num_classes": len(train.classes)},
        normalisation=(loaded.mean, loaded.std),
        command=command,
    )


def interpretable_spec(model: nn.Module) -> InterpretableSpec | None:
    """The spec of ``model``'s interpretable layer (the first, if several), or None."""
    masks = template_masks(model)
    return masks[0].spec if masks else None


__all__ = [
    "Crops",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "dataset_crops",
    "finetune_torchvision",
    "fit",
    "interpretable_spec",
    "reproducible",
    "synthetic_crops",
    "train_on_crops",
    "train_toy_model",
]
