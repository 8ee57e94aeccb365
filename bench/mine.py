"""Benchmark of mining: EM iterations vs. feature extraction, inference vs. forward pass, memory.

For the bundled toy CNN on synthetic 128-px images of one label, and for each N in ``--n``, a
child process (so each N has its own peak RSS, read from ``VmHWM``) measures:

- feature extraction of the N images (hashing, decoding, forward passes, normalisation, cache);
- seconds per EM iteration of each layer, and that time over the extraction time (ratio);
- inference of the learned graph per image, and that over the CNN's forward pass per image
  (target: at most 0.1);
- the peak resident memory.

Then, unless ``--no-vgg``, one more child mines the full VGG-16 default configuration (random
weights, no download; default layers, 61,440 patterns) on a few images to show it runs here.

    .venv/bin/python bench/mine.py                        # N = 500 and 2,000, 3 iterations
    .venv/bin/python bench/mine.py --n 120 480 --iterations 2 --vgg-images 16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import children  # bench/children.py, beside this script
import torch

from explgraph.core.progress import TimingProgress
from miner.models.toy import bundled_checkpoint

LABEL = "bird"
SIZE = 128
VGG_PATTERNS = 61_440
TOY_CHECKPOINT = bundled_checkpoint()


def dataset_for(workdir: Path, n: int) -> Path:
    """A synthetic set holding at least ``n`` images of LABEL (a quarter of all are birds)."""
    from miner.data.synthetic import write_synthetic

    folder = workdir / f"synth-{n}"
    if not (folder / "annotations.json").exists():
        write_synthetic(folder, 4 * n, size=SIZE, seed=0)
    return folder


def forward_seconds_per_image(module: torch.nn.Module, size: int, batch: int, reps: int) -> float:
    """The CNN's plain forward pass per image on ``[batch, 3, size, size]`` inputs (CPU)."""
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        module(x)  # warm-up: first calls pay allocator and kernel selection
        started = time.perf_counter()
        for _ in range(reps):
            module(x)
    return (time.perf_counter() - started) / (reps * batch)


def measure(
    model_spec: str,
    weights: str | None,
    data: Path,
    n: int,
    iterations: int,
    batch_size: int,
) -> dict[str, Any]:
    """Extract, learn, infer on ``n`` images of LABEL; return the timings (runs in a child)."""
    from miner.data.folder import load_dataset
    from miner.features import extract_features
    from miner.graph import GraphSettings, infer_graph, learn_graph
    from miner.models import load_model, resolve_layers

    started = time.perf_counter()
    loaded = load_model(model_spec, weights, device="cpu")
    t_load = time.perf_counter() - started
    layers = resolve_layers(loaded, None)
    records = list(load_dataset(data).select(label=LABEL).records)[:n]
    settings = GraphSettings(iterations=iterations)
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as cache:
        started = time.perf_counter()
        features = extract_features(
            loaded,
            records,
            layers,
            cache_dir=Path(cache) / "features",
            device="cpu",
            batch_size=batch_size,
            mirror=settings.use_flip,
        )
        t_features = time.perf_counter() - started
        timer = TimingProgress()
        started = time.perf_counter()
        graph = learn_graph(features, settings, device="cpu", progress=timer)
        t_learn = time.perf_counter() - started
        step = settings.chunk_size
        started = time.perf_counter()
        for lo in range(0, features.num_images, step):
            hi = min(lo + step, features.num_images)
            flipped = graph.flips[lo:hi] if features.mirrored else False
            infer_graph(graph, features, lo, hi, device="cpu", flipped=flipped)
        t_infer = time.perf_counter() - started
    batch = min(batch_size, features.num_images)
    forward = forward_seconds_per_image(loaded.module, loaded.input_size, batch, reps=2)
    infer_per_image = t_infer / features.num_images
    em = {
        lp.geometry.name: round(timer.mean_step(f"learn {lp.geometry.name}"), 3)
        for lp in graph.layers
    }
    return {
        "model": loaded.name,
        "images": features.num_images,
        "mirrored": features.mirrored,
        "iterations": iterations,
        "patterns": {lp.geometry.name: lp.num_patterns for lp in graph.layers},
        "model_load_s": round(t_load, 2),
        "features_s": round(t_features, 2),
        "em_s_per_iteration": em,
        "em_over_features": {k: round(v / t_features, 3) for k, v in em.items()},
        "learn_total_s": round(t_learn, 2),
        "inference_ms_per_image": round(1000 * infer_per_image, 3),
        "forward_ms_per_image": round(1000 * forward, 3),
        "inference_over_forward": round(infer_per_image / forward, 3),
        "threads": torch.get_num_threads(),
        "peak_rss_mb": round(children.peak_rss_mb(), 1),
    }


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run this script as a child with ``args``; its last stdout line is its JSON result."""
    done = children.run_child(__file__, args, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return children.child_result(done)


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per (run, layer) with the ratios, then one per run with the totals."""
    head = f"{'run':<14}{'layer':<14}{'patterns':>9}{'EM s/it':>10}{'features s':>12}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for row in rows:
        if "error" in row:
            print(f"{row['run']:<14}error: {row['error']}")
            continue
        for name, em in row["em_s_per_iteration"].items():
            print(
                f"{row['run']:<14}{name:<14}{row['patterns'][name]:>9}{em:>10.3f}"
                f"{row['features_s']:>12.2f}{row['em_over_features'][name]:>8.3f}"
            )
    print()
    head = (
        f"{'run':<14}{'images':>7}{'infer ms/img':>14}{'fwd ms/img':>12}{'ratio':>8}"
        f"{'learn s':>9}{'total s':>9}{'peak RSS MiB':>14}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        if "error" in row:
            continue
        print(
            f"{row['run']:<14}{row['images']:>7}{row['inference_ms_per_image']:>14.2f}"
            f"{row['forward_ms_per_image']:>12.2f}{row['inference_over_forward']:>8.3f}"
            f"{row['learn_total_s']:>9.1f}{row['wall_s']:>9.1f}{row['peak_rss_mb']:>14.0f}"
        )


def main() -> None:
    """Parse the flags; as parent run one child per configuration and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[500, 2000], help="images of the label")
    ap.add_argument("--iterations", type=int, default=3, help="EM iterations per layer")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--vgg-images", type=int, default=16, help="images for the VGG-16 run")
    ap.add_argument("--vgg-iterations", type=int, default=1)
    ap.add_argument("--no-vgg", action="store_true", help="skip the VGG-16 run")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-mine")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per child")
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        started = time.perf_counter()
        data = dataset_for(args.workdir, args.n[0])
        data_s = round(time.perf_counter() - started, 1)
        result = measure(
            args.model, args.weights, data, args.n[0], args.iterations, args.batch_size
        )
        print(json.dumps({"data_s": data_s, **result}))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    common = ["--workdir", str(args.workdir), "--batch-size", str(args.batch_size)]
    jobs = [
        (f"toy N={n}", [*common, "--model", str(TOY_CHECKPOINT), "--n", str(n),
                        "--iterations", str(args.iterations)])
        for n in args.n
    ]  # fmt: skip
    if not args.no_vgg:
        jobs.append(
            (
                f"vgg16 N={args.vgg_images}",
                [*common, "--model", "vgg16", "--weights", "none", "--n", str(args.vgg_images),
                 "--iterations", str(args.vgg_iterations)],
            )
        )  # fmt: skip
    rows = []
    for name, child_args in jobs:
        started = time.perf_counter()
        row = {"run": name, **run_child(child_args, args.timeout)}
        row["wall_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        # each result as soon as it is there, so a run cut short still reports what it measured
        print(f"# {name} done in {row['wall_s']} s: {json.dumps(row)}", file=sys.stderr, flush=True)
    print_table(rows)
    vgg = [r for r in rows if r["run"].startswith("vgg16") and "patterns" in r]
    for row in vgg:
        total = sum(row["patterns"].values())
        note = "" if total == VGG_PATTERNS else f" (expected {VGG_PATTERNS})"
        print(f"\nVGG-16 default configuration: {total} patterns{note}")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
