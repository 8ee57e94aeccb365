"""Throughput of the synthetic parts dataset: images per second written by write_synthetic.

Usage: python bench/synth.py [--n 500] [--size 128] [--seed 0] [--out DIR]
(without --out the images go to a temporary folder that is removed afterwards).

Prints wall-clock rates and rates per CPU-second of this process; on a shared machine the
second figure is the one that says what the code costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from miner.data.synthetic import render_sample, write_synthetic


def _rates(work: Callable[[], object], n: int) -> tuple[float, float]:
    """Images per wall-clock second and per CPU-second of this process for ``n`` images."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def main() -> None:
    """Time rendering alone, then rendering plus PNG and annotation writing."""
    parser = argparse.ArgumentParser(description="Synthetic dataset throughput.")
    parser.add_argument("--n", type=int, default=500, help="images to make")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the images in this folder")
    args = parser.parse_args()

    render_sample(0, args.size, args.seed)  # warm-up: imports and first-call allocations
    render = _rates(lambda: [render_sample(i, args.size, args.seed) for i in range(args.n)], args.n)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "synthetic"
        write = _rates(lambda: write_synthetic(out, args.n, size=args.size, seed=args.seed), args.n)
    print(f"size {args.size} px, n {args.n}")
    print(f"render_sample:   {render[0]:6.0f} images/s wall, {render[1]:6.0f} images/CPU-s")
    print(f"write_synthetic: {write[0]:6.0f} images/s wall, {write[1]:6.0f} images/CPU-s")


if __name__ == "__main__":
    main()
