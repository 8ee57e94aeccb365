"""Explainer networks on a frozen CNN: p, reconstruction, agreement, and part purity, with controls.

For each layer, on one seed (synthetic parts dataset of ``--n`` images rendered with that seed;
the explainers train on its train split, everything is measured on its test split, which neither
the performer nor the explainers saw):

1. an explainer (filter loss on the interpretable track) and a **control** explainer (the same
   network and seed, no filter loss) are trained (``explgraph explain-net train``; the equivalent
   command is printed);
2. both are measured on the test crops (``explgraph explain-net evaluate``): ``p`` (mean and
   median), the relative reconstruction error of the swapped map, the performer's top-1
   agreement and accuracy with its layer replaced by the reconstruction, and the part purity
   (:mod:`queries.filter_parts`, top-20 images per filter) of the interpretable filters of both
   explainers and of the performer's raw filters of the layer.

Seed discipline as in bench/faithfulness.py: settings are chosen on the dev seeds (11, 12) only;
the evaluation seed 2026 is run once for the report.

Example (toy CNN, two layers, evaluation seed):
    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/explainer.py --seed 2026 --json /tmp/e2026.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from miner.explainer import (  # noqa: E402
    AnnotatedCrops,
    ExplainerConfig,
    explain_layer,
    performer_layer,
    synthetic_crops,
)
from miner.models import load_model  # noqa: E402
from miner.models.spec import LoadedModel  # noqa: E402
from queries.explainer import explainer_report  # noqa: E402

TOY = str(ROOT / "miner" / "assets" / "toy_vgg.pt")


def command(args: argparse.Namespace, layer: str, control: bool) -> str:
    """The ``explgraph`` commands that train and measure the same explainer."""
    weights = ["--weights", args.weights] if args.weights else []
    model = os.path.relpath(args.model) if Path(args.model).exists() else args.model
    flw = 0.0 if control else args.filter_loss_weight
    data = f"--n {args.n} --data-seed {args.seed}"
    train = [
        "explgraph explain-net train", model, *weights, "--layer", layer, data,
        f"--epochs {args.epochs} --batch-size {args.batch_size} --lr {args.lr} --seed {args.seed}",
        f"--filters {args.filters} --hidden {args.hidden} --tau {args.tau}",
        f"--filter-loss-weight {flw}",
        f"--p-weight {args.p_weight} --noise {args.noise}",
        f"--diversity-weight {args.diversity_weight} --out E.pt",
    ]  # fmt: skip
    return " ".join(train) + f" && explgraph explain-net evaluate E.pt {data}"


def run_one(
    args: argparse.Namespace,
    loaded: LoadedModel,
    layer: str,
    crops: tuple[AnnotatedCrops, AnnotatedCrops],
    control: bool,
) -> dict[str, Any]:
    """Train one explainer (or control) of ``layer`` and measure it on the test crops."""
    train, test = crops
    print("$ " + command(args, layer, control), flush=True)
    options = {"filters": args.filters, "hidden": args.hidden, "tau": args.tau}
    options |= {"p_weight": args.p_weight, "diversity_weight": args.diversity_weight}
    options |= {
        "noise": args.noise,
        "filter_loss_weight": 0.0 if control else args.filter_loss_weight,
    }
    config = ExplainerConfig(
        args.epochs, args.batch_size, args.lr, seed=args.seed, threads=args.threads
    )
    started = time.perf_counter()
    trained = explain_layer(loaded, layer, train, config, options=options)
    seconds = time.perf_counter() - started
    report = explainer_report(loaded, performer_layer(loaded, layer), trained.explainer(), test)
    return {**report.to_dict(), "train_seconds": seconds, "history_last": trained.history[-1]}


def spread(quantiles: dict[str, float]) -> float:
    """``q90 - q10`` of ``p``: how much the gate's share varies between images."""
    return quantiles["q90"] - quantiles["q10"]


def table(layer: str, explained: dict[str, Any], control: dict[str, Any] | None) -> str:
    """One markdown table: explainer vs control (``None``: not run), and the layer's raw filters."""

    def row(label: str, key: Any, spec: str = ".3f") -> str:
        values = [key(explained), None if control is None else key(control)]
        cells = ["—" if v is None else format(v, spec) for v in values]
        return f"| {label} | {cells[0]} | {cells[1]} |"

    interp, raw = "interpretable_filters", "raw_filters"
    lines = [
        f"| {layer} ({explained['n_images']} test crops) | explainer | control (no filter loss) |",
        "|---|---|---|",
        row("p, mean", lambda r: r["p"]["mean"]),
        row("p, median", lambda r: r["p"]["quantiles"]["q50"]),
        row("p, 10th / 90th percentile spread", lambda r: spread(r["p"]["quantiles"]), ".4f"),
        row("reconstruction error (relative)", lambda r: r["reconstruction_error"], ".4f"),
        row("top-1 agreement, layer replaced", lambda r: r["agreement"], ".1%"),
        row("top-1 accuracy, layer replaced", lambda r: r["swapped_accuracy"], ".1%"),
        row("mean purity, interpretable filters", lambda r: r[interp]["mean_purity"]),
        row("part-pure interpretable filters", lambda r: r[interp]["pure_share"], ".1%"),
        row("dead interpretable filters", lambda r: r[interp]["dead_filters"], "d"),
        row("training time (s)", lambda r: r["train_seconds"], ".0f"),
        f"| performer's raw filters: mean purity / part-pure | "
        f"{explained[raw]['mean_purity']:.3f} / {explained[raw]['pure_share']:.1%} "
        f"({explained[raw]['n_filters']} filters) | |",
        row("performer's top-1 accuracy, original", lambda r: r["accuracy"], ".1%"),
    ]
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    """The command line (defaults: the toy CNN's two top layers, the chosen settings)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=TOY, help="performer (default: the bundled toy CNN)")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--layers", default="block3_conv2,block4_conv2")
    parser.add_argument("--seed", type=int, default=11, help="dev: 11, 12; evaluation: 2026")
    parser.add_argument("--n", type=int, default=800, help="synthetic images (3/4 train)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--filter-loss-weight", type=float, default=0.05)
    parser.add_argument("--p-weight", type=float, default=0.05)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--diversity-weight", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-control", action="store_true", help="skip the control explainer")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--tables-from", type=Path, default=None, help="print a --json's tables")
    return parser.parse_args()


def main() -> None:
    """Train and measure explainer and control per layer; print the tables."""
    args = parse()
    if args.tables_from is not None:
        saved = json.loads(args.tables_from.read_text())
        for layer, runs in saved["layers"].items():
            print(table(layer, runs["explainer"], runs.get("control")))
        return
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.weights)
    train = synthetic_crops(args.n, args.seed, "train", loaded.input_size)
    test = synthetic_crops(args.n, args.seed, "test", loaded.input_size)
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "layers": {}}
    for layer in args.layers.split(","):
        kinds = {"explainer": False} | ({} if args.no_control else {"control": True})
        runs = {k: run_one(args, loaded, layer, (train, test), c) for k, c in kinds.items()}
        result["layers"][layer] = runs
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2))
        print(table(layer, runs["explainer"], runs.get("control")), flush=True)


if __name__ == "__main__":
    main()
