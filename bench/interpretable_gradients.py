"""How hard the filter loss pulls against the task loss, on one batch of a trained toy CNN.

Inserts the interpretable layer's mask into a trained (ordinary) checkpoint, without training,
and prints: the test accuracy before and after inserting the mask, and on the first training batch
the cross-entropy, ``lambda * sum_f Loss_f``, and the gradient norm of each on the layer's conv
weights — for the paper's ``tau = 0.5 / n^2`` and each ``--tau`` given.

Example:
    PYTHONPATH=. python bench/interpretable_gradients.py CKPT.pt --data DIR --tau 0.05
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from miner.data.folder import load_dataset  # noqa: E402
from miner.models.interpretable import filter_loss_of, make_interpretable  # noqa: E402
from miner.models.training import (  # noqa: E402
    _normalise,
    accuracy,
    dataset_crops,
    warm_start_model,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="an ordinary toy CNN checkpoint")
    parser.add_argument("--data", type=Path, required=True, help="the data it was trained on")
    parser.add_argument("--layer", default="block4_conv2")
    parser.add_argument("--tau", type=float, action="append", default=[])
    parser.add_argument("--filter-loss-weight", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test, _ = dataset_crops(load_dataset(args.data), 96)
    plain = warm_start_model(args.checkpoint, train.classes)
    print(f"accuracy without the mask: {accuracy(plain, test):.1%} on {len(test)} test crops")
    images = _normalise(train.images[: args.batch_size])
    labels = train.labels[: args.batch_size]
    for tau in [None, *args.tau]:
        model = warm_start_model(args.checkpoint, train.classes)
        spec = make_interpretable(model, args.layer, 96, tau=tau, weight=args.filter_loss_weight)
        masked_accuracy = accuracy(model, test)
        model.train()
        task = F.cross_entropy(model(images), labels)
        filters = filter_loss_of(model)
        assert filters is not None
        conv = model.get_submodule(spec.layer)
        assert isinstance(conv, torch.nn.Conv2d)
        weight = conv.weight
        per_filter = float(filters.detach()) / spec.weight / weight.shape[0]
        task_grad = torch.autograd.grad(task, weight, retain_graph=True)[0].norm()
        filter_grad = torch.autograd.grad(filters, weight)[0].norm()
        print(
            f"tau {spec.resolved_tau:.4g}, lambda {spec.weight:g}: accuracy with the mask "
            f"{masked_accuracy:.1%}; task loss {float(task.detach()):.3f}, lambda * filter loss "
            f"{float(filters.detach()):.3f} ({per_filter:.2g} per filter); "
            f"gradient norm task {float(task_grad):.4g}, filter {float(filter_grad):.4g} "
            f"(ratio {float(filter_grad / task_grad):.1f})"
        )


if __name__ == "__main__":
    main()
