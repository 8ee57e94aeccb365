"""Few-shot part localisation benchmark: AOG vs baselines per category and part, and latency.

Mines the bundled toy CNN on the synthetic parts dataset (one graph per category, skipped when
already in the store with the same inputs), picks 3 training shots per part (farthest-point over
part positions, training split only), and scores the AOG and the baselines on the test split
(docs/method.md §7.2 normalised distance, lower is better). Latency of ``locate`` per image is split
into CNN forward, graph inference, store queries and voting, measured on a cold feature cache.

    .venv/bin/python bench/parts.py --images 240 --iterations 5 --categories bird
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import miner
from explgraph.workflows.mine import MineRequest, run_mine
from graphstore import open_store
from miner.data.folder import load_dataset
from miner.data.synthetic import CATEGORY_PARTS, write_synthetic
from queries.aog import build_aog, evaluate_parts, locate_part, pick_shots
from queries.loaded import LoadedGraph


def _mine(args: argparse.Namespace, data: Path, category: str) -> str:
    model_id = f"toy_vgg-{category}"
    request = MineRequest(
        model=str(Path(miner.__file__).resolve().parent / "assets" / "toy_vgg.pt"),
        images=data,
        cache_dir=args.root / "cache",
        label=category,
        split="train",
        model_id=model_id,
        device=args.device,
        settings_overrides={"iterations": args.iterations, "seed": 0},
    )
    started = time.perf_counter()
    summary = run_mine(request, str(args.root / "store"))
    print(f"{category}: {'reused' if summary.reused else 'mined'} in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    return model_id


def _latency(
    args: argparse.Namespace, model_id: str, shots: Any, records: list[Any]
) -> dict[str, float]:
    """Seconds per image of ``locate``, with a feature cache that holds only the mined entry
    (so the CNN forward of the new images really runs)."""
    with open_store(str(args.root / "store")) as store:
        loaded = LoadedGraph.open(
            store, model_id, cache_dir=args.root / "cache", device=args.device
        )
        build_aog(store, loaded, shots)
        params = loaded.params
    cold = Path(tempfile.mkdtemp(prefix="parts-bench-"))
    try:
        key = str(params["features_key"])
        shutil.copytree(args.root / "cache" / "features" / key, cold / "features" / key)
        with open_store(str(args.root / "store"), read_only=True) as store:
            started = time.perf_counter()
            cold_graph = LoadedGraph.open(store, model_id, cache_dir=cold, device=args.device)
            opened = time.perf_counter() - started
            result = locate_part(store, cold_graph, shots.part, records)
            result.seconds["store"] += opened  # reading the graph is store time, as before
    finally:
        shutil.rmtree(cold, ignore_errors=True)
    n = max(len(records), 1)
    return {name: value / n for name, value in result.seconds.items()}


def main() -> None:
    """Run the benchmark and print one row per (category, part) plus the latency split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("bench-out/parts"))
    parser.add_argument("--images", type=int, default=240, help="synthetic images, all labels")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--categories", default="bird")
    parser.add_argument("--parts", default="", help="comma list (default: every part)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    data = args.root / "synth"
    if not (data / "annotations.json").exists():
        write_synthetic(data, args.images, size=128, seed=0)
    dataset = load_dataset(data, data / "annotations.json")
    rows: list[dict[str, Any]] = []
    for category in args.categories.split(","):
        model_id = _mine(args, data, category)
        train = list(dataset.select(split="train", label=category).records)
        test = list(dataset.select(split="test", label=category).records)
        parts = args.parts.split(",") if args.parts else list(CATEGORY_PARTS[category])
        for part in parts:
            shots = pick_shots(train, part, 3, size=96)
            with open_store(str(args.root / "store"), read_only=True) as store:
                loaded = LoadedGraph.open(
                    store, model_id, cache_dir=args.root / "cache", device=args.device
                )
                report = evaluate_parts(store, loaded, shots, test)
            row = {"category": category, **report.to_dict()}
            del row["templates"]
            rows.append(row)
            ratios = "  ".join(f"{k} {v:.2f}" for k, v in row["ratios"].items())
            baseline = "  ".join(f"{k} {v:.4f}" for k, v in row["baselines"].items())
            print(f"{category:>9} {part:>10}  n_test {row['n_test']:>3}  AOG {row['aog']:.4f}  "
                  f"{baseline}  | AOG/baseline: {ratios}", flush=True)  # fmt: skip
        shots = pick_shots(train, parts[0], 3, size=96)
        latency = _latency(args, model_id, shots, test)
        rows.append({"category": category, "latency_per_image_s": latency, "n_images": len(test)})
        print(f"{category}: locate latency per image (s): "
              + ", ".join(f"{k} {v:.4f}" for k, v in latency.items()), flush=True)  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
