"""Micro-benchmark of explanatory-graph learning and inference on planted random features.

Default: the toy shape of the project's small CNN (4 layers: 128x24², 128x24², 128x12², 128x12²,
strides 8, 8, 16, 16), 400 images whose filters fire at parts that move from image to image,
plus noise. Reports seconds per EM iteration per layer, the final pass, and inference per image.

    .venv/bin/python bench/learn.py --images 400 --iterations 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time

import torch

from explgraph.core.progress import TimingProgress
from miner.graph import GraphSettings, TensorFeatures, infer_graph, learn_graph
from miner.models.spec import LayerGeometry


def planted_features(n: int, channels: int, seed: int) -> TensorFeatures:
    """Filters that fire at 12 moving parts (each filter at one or two of them) plus noise."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(24, 8.0), (24, 8.0), (12, 16.0), (12, 16.0)]
    layers = [
        LayerGeometry(f"conv{i}", i, channels, s, s, st, 4 * st, st / 2)
        for i, (s, st) in enumerate(shapes)
    ]
    parts = 0.25 + 0.5 * torch.rand(12, 2, generator=gen)  # fractions of the map
    moves = 0.08 * torch.randn(n, 12, 2, generator=gen)
    where = (parts[None] + moves).clamp(0.05, 0.95)  # [n, 12, 2]
    maps = []
    for g in layers:
        own = torch.randint(0, 12, (channels, 2), generator=gen)
        size = g.height
        ys = torch.arange(size, dtype=torch.float32)[:, None]
        xs = torch.arange(size, dtype=torch.float32)[None, :]
        m = 0.05 * torch.rand(n, channels, size, size, generator=gen)
        for k in range(2):
            c = where[:, own[:, k]] * (size - 1)  # [n, C, 2]
            d2 = (xs - c[..., 0, None, None]) ** 2 + (ys - c[..., 1, None, None]) ** 2
            m += torch.exp(-d2 / (2 * (0.04 * size) ** 2 + 0.5))
        maps.append(m)
    return TensorFeatures(maps, layers, key=f"bench-{n}-{channels}-{seed}")


def main() -> None:
    """Run the benchmark and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    features = planted_features(args.images, args.channels, seed=0)
    settings = GraphSettings(iterations=args.iterations, chunk_size=args.chunk_size, use_flip=False)
    timer = TimingProgress()
    t0 = time.perf_counter()
    graph = learn_graph(features, settings, device=args.device, progress=timer)
    t_learn = time.perf_counter() - t0
    per_layer = {}
    for name, stamps in timer.bars.items():
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        per_layer[name] = round(sum(steps) / max(len(steps), 1), 3)
    t0 = time.perf_counter()
    infer_graph(graph, features, 0, args.images, device=args.device)
    t_infer = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "images": args.images,
                "patterns_per_layer": [lp.num_patterns for lp in graph.layers],
                "threads": torch.get_num_threads(),
                "device": args.device,
                "seconds_per_em_iteration": per_layer,
                "learn_total_s": round(t_learn, 2),
                "inference_ms_per_image": round(1000 * t_infer / args.images, 2),
                "explained_share": [round(lp.explained_share, 3) for lp in graph.layers],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
