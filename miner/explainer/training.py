"""Train an explainer on a performer layer's maps, with a checkpoint per epoch and resume.

The performer is frozen, so its maps of the training crops are computed once
(:func:`miner.explainer.performer.layer_maps`) and the explainer trains on them alone. Runs are
deterministic for a seed on the CPU: the initialisation and the training noise come from torch's
seeded global generator, the batch order from a seeded generator, and both generators' states
are saved with every epoch, so a resumed run ends with the same weights as an uninterrupted one.

Checkpoints live in ``checkpoint_dir/explainer-<digest>/epoch<k>.pt``; the digest covers the
maps (so the performer, its layer and the images), the spec and the settings that change the
result, so a re-run of the same command resumes from its last finished epoch and any other run
starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from explgraph.core.errors import InputError, ModelError
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.explainer.checkpoint import ExplainerCheckpoint, read_explainer, save_explainer
from miner.explainer.network import Explainer, ExplainerSpec, explainer_loss
from miner.models.training import reproducible

log = logging.getLogger(__name__)

#: settings that do not change the result (left out of the checkpoint digest)
_IRRELEVANT = ("threads",)


@dataclass(frozen=True)
class ExplainerConfig:
    """How an explainer is optimised (recorded in its checkpoint)."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate: linear warm-up, then cosine decay to zero
    weight_decay: float = 1e-4
    warmup: float = 0.1  # share of the steps spent warming up
    seed: int = 0
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExplainerConfig:
        """Read :meth:`to_dict`'s output back (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def learning_rate(step: int, total: int, config: ExplainerConfig) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total``."""
    warm = max(1, round(config.warmup * total))
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def run_digest(maps: torch.Tensor, spec: ExplainerSpec, config: ExplainerConfig) -> str:
    """Hex digest naming one training run's checkpoints (maps, spec and result settings)."""
    data = hashlib.sha256(maps.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    settings = {k: v for k, v in config.to_dict().items() if k not in _IRRELEVANT}
    blob = json.dumps(
        {"maps": data, "shape": list(maps.shape), "spec": spec.to_dict(), "config": settings},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class EpochCheckpoints:
    """The finished epochs of one run (``folder/epoch<k>.pt``)."""

    def __init__(self, directory: Path | str, digest: str) -> None:
        self.folder = Path(directory) / f"explainer-{digest}"
        self.digest = digest

    def path(self, epoch: int) -> Path:
        """The file of epoch ``epoch``."""
        return self.folder / f"epoch{epoch}.pt"

    def latest(self) -> ExplainerCheckpoint | None:
        """The last readable finished epoch, or ``None`` (a damaged file is skipped, logged)."""
        epochs = sorted(
            (int(p.stem[5:]) for p in self.folder.glob("epoch*.pt") if p.stem[5:].isdigit()),
            reverse=True,
        )
        for epoch in epochs:
            try:
                state = read_explainer(self.path(epoch))
            except ModelError as error:
                log.warning("checkpoint %s is unreadable (%s); skipped", self.path(epoch), error)
                continue
            if state.data.get("digest") == self.digest:
                return state
        return None

    def save(self, checkpoint: ExplainerCheckpoint) -> Path:
        """Store one finished epoch."""
        path = save_explainer(self.path(checkpoint.epoch), checkpoint)
        fault_point("explainer.checkpoint")
        return path


@dataclass
class _Run:
    """The state of one training run between epochs."""

    model: Explainer
    optimiser: torch.optim.Optimizer
    generator: torch.Generator
    history: list[dict[str, float]]
    epoch: int = 0
    step: int = 0


def _run_epoch(
    run: _Run, maps: torch.Tensor, config: ExplainerConfig, device: torch.device, bar: Any
) -> dict[str, float]:
    """One pass over the maps in a seeded order; the epoch's mean loss terms."""
    steps = math.ceil(len(maps) / config.batch_size)
    total_steps = steps * config.epochs
    sums = {"loss": 0.0, "reconstruction": 0.0, "filter_loss": 0.0, "p_term": 0.0, "p": 0.0}
    run.model.train()
    order = torch.randperm(len(maps), generator=run.generator)
    for index in range(steps):
        chosen = order[index * config.batch_size : (index + 1) * config.batch_size]
        batch = maps[chosen].to(device)
        for group in run.optimiser.param_groups:
            group["lr"] = learning_rate(run.step, total_steps, config)
        output = run.model(batch)
        loss = explainer_loss(run.model, output, batch)
        run.optimiser.zero_grad(set_to_none=True)
        loss.total.backward()
        run.optimiser.step()
        run.step += 1
        terms = (float(loss.total.detach()), loss.reconstruction, loss.filter, loss.p_term)
        for key, value in zip(sums, (*terms, loss.p_mean), strict=True):
            sums[key] += value * len(chosen)
        bar.advance()
    row = {key: value / len(maps) for key, value in sums.items()}
    return {"epoch": float(run.epoch + 1), **row}


def _restore(run: _Run, state: ExplainerCheckpoint) -> None:
    """Continue ``run`` from a finished epoch's checkpoint."""
    run.model.load_state_dict(state.state_dict)
    run.optimiser.load_state_dict(state.optimiser)
    if "torch" in state.rng:
        torch.set_rng_state(state.rng["torch"])
    if "batches" in state.rng:
        run.generator.set_state(state.rng["batches"])
    run.history, run.epoch, run.step = list(state.history), state.epoch, state.step


def _snapshot(run: _Run, spec: ExplainerSpec, meta: dict[str, Any]) -> ExplainerCheckpoint:
    return ExplainerCheckpoint(
        spec=spec,
        state_dict={k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()},
        performer=dict(meta.get("performer", {})),
        config=dict(meta["config"]),
        data=dict(meta.get("data", {})),
        history=list(run.history),
        epoch=run.epoch,
        step=run.step,
        optimiser=run.optimiser.state_dict(),
        rng={"torch": torch.get_rng_state(), "batches": run.generator.get_state()},
    )


def train_explainer(
    maps: torch.Tensor,
    spec: ExplainerSpec,
    config: ExplainerConfig = ExplainerConfig(),
    *,
    performer: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> ExplainerCheckpoint:
    """Train an explainer on ``maps`` (``N x C x h x w``, the performer's rectified responses).

    Args:
        maps: the training maps (CPU); batches are moved to ``device``.
        spec: architecture and loss weights; its shape must match ``maps``.
        config: optimiser settings and seed.
        performer, data: recorded in the checkpoints as they are (what was explained, on what).
        checkpoint_dir: folder for the per-epoch checkpoints; a re-run with the same maps, spec
            and settings resumes after the last finished epoch. ``None``: no checkpoints.
        progress: one bar per epoch and one log line per epoch.

    Returns:
        The final checkpoint (weights, history, everything :func:`save_explainer` writes).

    Raises:
        InputError: maps of the wrong shape, or no maps.
    """
    _check_maps(maps, spec, config)
    device = torch.device(device)
    meta = {
        "performer": dict(performer or {}),
        "config": config.to_dict(),
        "data": dict(data or {}),
    }
    digest = run_digest(maps, spec, config)
    meta["data"]["digest"] = digest
    checkpoints = EpochCheckpoints(checkpoint_dir, digest) if checkpoint_dir is not None else None
    with reproducible(config.threads, config.seed) as generator:
        model = Explainer(spec)
        model.set_input_scale(maps)
        model.to(device)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        run = _Run(model, optimiser, generator, [])
        state = checkpoints.latest() if checkpoints is not None else None
        if checkpoints is not None and state is not None:
            _restore(run, state)
            log.info(
                "resuming explainer training after epoch %d (%s)", run.epoch, checkpoints.folder
            )
        _train_epochs(run, maps, spec, config, meta, checkpoints, device, progress)
        return _snapshot(run, spec, meta)


def _train_epochs(
    run: _Run,
    maps: torch.Tensor,
    spec: ExplainerSpec,
    config: ExplainerConfig,
    meta: dict[str, Any],
    checkpoints: EpochCheckpoints | None,
    device: torch.device,
    progress: Progress,
) -> None:
    """The remaining epochs of ``run``, each checkpointed and logged."""
    steps = math.ceil(len(maps) / config.batch_size)
    while run.epoch < config.epochs:
        with progress.task(f"explainer epoch {run.epoch + 1}/{config.epochs}", steps) as bar:
            row = _run_epoch(run, maps, config, device, bar)
        run.epoch += 1
        run.history.append(row)
        if checkpoints is not None:
            checkpoints.save(_snapshot(run, spec, meta))
        progress.log(
            f"epoch {run.epoch}: loss {row['loss']:.4f}, reconstruction "
            f"{row['reconstruction']:.4f}, filter loss {row['filter_loss']:.3f} per filter, "
            f"p {row['p']:.3f}"
        )
    run.model.eval()


def _check_maps(maps: torch.Tensor, spec: ExplainerSpec, config: ExplainerConfig) -> None:
    if maps.dim() != 4 or tuple(maps.shape[1:]) != (spec.channels, spec.height, spec.width):
        raise InputError(
            f"maps of shape {tuple(maps.shape)} do not fit the explainer of "
            f"{spec.channels} x {spec.height} x {spec.width}; compute them at the spec's layer"
        )
    if len(maps) < 2:
        raise InputError(
            "an explainer needs at least two training images (the filter loss "
            "compares the images of a batch); give more"
        )
    if config.epochs < 1 or config.batch_size < 2:
        raise InputError("--epochs must be at least 1 and --batch-size at least 2")


__all__ = [
    "EpochCheckpoints",
    "ExplainerConfig",
    "learning_rate",
    "run_digest",
    "train_explainer",
]
