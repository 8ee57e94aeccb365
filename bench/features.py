"""Benchmark feature extraction: images/s, overhead over a bare forward pass, peak memory.

For the toy CNN (the committed checkpoint if there is one, else a freshly initialised toy_vgg)
and MobileNetV2 (torchvision architecture, random weights: speed does not depend on them),
on the synthetic parts dataset:

- images/s of ``extract_features`` (cold cache), and of a cache hit;
- images/s of a bare ``model(x)`` over the same crops, already decoded and normalised in
  memory, and the ratio extraction time / bare forward time;
- peak RSS (``VmHWM``) of a fresh process that extracts N images and then reads every
  chunk back, for two N (default 500 and 2000): it should stay flat.

Usage::

    python bench/features.py                       # defaults: 256 images for speed
    python bench/features.py --speed-n 64 --rss-n 100 400 --models toy   # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miner.data.folder import load_dataset
from miner.data.images import crop_to_box, load_image
from miner.data.records import ImageRecord
from miner.data.synthetic import write_synthetic
from miner.features import extract_features
from miner.models.loading import TOY_CHECKPOINT, load_model
from miner.models.spec import LoadedModel

_MODELS = ("toy", "mobilenet_v2")


def _load(name: str) -> LoadedModel:
    if name == "toy":
        return load_model("toy_vgg", None if TOY_CHECKPOINT.is_file() else "none")
    return load_model("mobilenet_v2", "none")


def _records(data: Path, n: int) -> list[ImageRecord]:
    records = list(load_dataset(data).records)
    if len(records) < n:
        raise SystemExit(f"{data} holds {len(records)} images, fewer than {n}")
    return records[:n]


def _bare_forward(model: LoadedModel, records: list[ImageRecord], batch_size: int) -> float:
    """Seconds for ``model(x)`` over the crops, decoded and normalised beforehand."""
    mean = torch.tensor(model.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    crops = np.stack(
        [np.asarray(crop_to_box(load_image(r.path), r.box, model.input_size)) for r in records]
    )
    inputs = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
    module = model.module.eval()
    with torch.inference_mode():
        module(inputs[:batch_size])  # warm-up: first-call allocations
        start = time.perf_counter()
        for begin in range(0, len(inputs), batch_size):
            module(inputs[begin : begin + batch_size])
        return time.perf_counter() - start


def _speed(name: str, data: Path, n: int, batch_size: int, device: str) -> dict[str, Any]:
    model = _load(name)
    records = _records(data, n)
    with tempfile.TemporaryDirectory(prefix="explgraph-bench-") as cache:
        start = time.perf_counter()
        fs = extract_features(
            model, records, [], cache_dir=Path(cache), batch_size=batch_size, device=device
        )
        cold = time.perf_counter() - start
        start = time.perf_counter()
        extract_features(
            model, records, [], cache_dir=Path(cache), batch_size=batch_size, device=device
        )
        hit = time.perf_counter() - start
    bare = _bare_forward(model, records, batch_size)
    return {
        "model": name,
        "weights": model.weights,
        "input_size": model.input_size,
        "layers": [layer.name for layer in fs.layers],
        "images": fs.num_images,
        "extract_images_per_s": round(fs.num_images / cold, 1),
        "cache_hit_s": round(hit, 2),
        "bare_forward_images_per_s": round(fs.num_images / bare, 1),
        "extract_over_bare_forward": round(cold / bare, 2),
    }


def _peak_rss_mb() -> float:
    """Peak RSS of this process image in MiB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` would also count the pages of the (large)
    parent that forked this child before ``exec``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child_rss(name: str, data: Path, n: int, batch_size: int, device: str) -> None:
    """Extract ``n`` images, read every chunk back, print peak RSS (one JSON line)."""
    model = _load(name)
    records = _records(data, n)
    before = _peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="explgraph-bench-") as cache:
        fs = extract_features(
            model, records, [], cache_dir=Path(cache), batch_size=batch_size, device=device
        )
        after_extract = _peak_rss_mb()
        total = 0.0
        for layer in range(len(fs.layers)):
            for begin in range(0, fs.num_images, 64):
                total += float(fs.chunk(layer, begin, min(begin + 64, fs.num_images)).sum())
        cache_bytes = sum(p.stat().st_size for p in Path(fs.directory).iterdir())
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {
                "model": name,
                "images": n,
                "peak_rss_mb_model_loaded": before,
                "peak_rss_mb_after_extract": after_extract,
                "peak_rss_mb_after_reading_all_chunks": peak,
                "cache_mb": round(cache_bytes / 2**20, 1),
            }
        )
    )


def main() -> None:
    """Run the benchmark and print one JSON object per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=_MODELS, default=list(_MODELS))
    parser.add_argument("--speed-n", type=int, default=256, help="images for the speed runs")
    parser.add_argument("--rss-n", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--rss-models", nargs="+", choices=_MODELS, default=["toy"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, default=128, help="synthetic image side")
    parser.add_argument("--data", type=Path, help="reuse a synthetic dataset folder")
    parser.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_rss:
        _child_rss(args.models[0], args.data, args.child_rss, args.batch_size, args.device)
        return

    with tempfile.TemporaryDirectory(prefix="explgraph-bench-data-") as scratch:
        data = args.data or Path(scratch)
        needed = max([args.speed_n, *args.rss_n])
        if args.data is None:
            start = time.perf_counter()
            write_synthetic(data, n=needed, size=args.image_size, seed=0)
            took = time.perf_counter() - start
            print(json.dumps({"synthetic_images": needed, "render_s": round(took, 1)}))
        print(json.dumps({"torch_threads": torch.get_num_threads(), "device": args.device}))
        for name in args.models:
            print(json.dumps(_speed(name, data, args.speed_n, args.batch_size, args.device)))
        for name in args.rss_models:
            for n in args.rss_n:
                child = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--models",
                        name,
                        "--data",
                        str(data),
                        "--child-rss",
                        str(n),
                        "--batch-size",
                        str(args.batch_size),
                        "--device",
                        args.device,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                print(child.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
