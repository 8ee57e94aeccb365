"""What `evaluate stability` costs on new images once its controls are cached (issue 13, goal 4).

The controls (patterns at initialisation, lower layers learned without parents) are learned once,
on the mining images, and cached beside the mining checkpoints; on new images `evaluate
stability` should then only run inference. This bench mines the bundled toy CNN on synthetic
birds, then times, on the test split (images the graph never saw):

1. ``evaluate stability`` with every control, cold: the controls are learned (once per model);
2. the same on the same images again: features and controls cached;
3. the same on *other* new images (a second synthetic set): controls cached, features not;
4. a plain inference pass: feature extraction of those other images + one top-down pass of the
   stored graph (what `explain` or `diagnose` run per image).

The goal is (3) <= 2 x (4). Every time is the process's CPU time (the machine may be shared)
and wall time. ::

    python bench/stability_cost.py                      # 90 training birds, 5 iterations
    python bench/stability_cost.py --train 60 --iterations 3 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@contextmanager
def timed(into: dict[str, Any], name: str) -> Iterator[None]:
    """Store CPU and wall seconds of the block under ``into[name]``."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    into[name] = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def main() -> None:
    """Mine, evaluate three times, infer once; print the times and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=600, help="synthetic images per set")
    ap.add_argument("--train", type=int, default=90, help="training birds to mine")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from explgraph.workflows.mine import MineRequest, run_mine
    from graphstore import open_store
    from miner.data.folder import load_dataset
    from miner.data.synthetic import write_synthetic
    from miner.features import extract_features
    from miner.graph import infer_graph
    from miner.models.toy import bundled_checkpoint
    from queries.evaluate_stability import evaluate_stability
    from queries.loaded import LoadedGraph

    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-stability-"))
    root.mkdir(parents=True, exist_ok=True)
    sets = {}
    for name, seed in (("mined", 7), ("other", 8)):
        sets[name] = root / f"synth-{name}"
        if not (sets[name] / "annotations.json").exists():
            write_synthetic(sets[name], args.images, seed=seed)
    store_dir, cache = str(root / "store"), root / "cache"
    request = MineRequest(
        model=str(bundled_checkpoint()),
        images=sets["mined"],
        cache_dir=cache,
        label="bird",
        split="train",
        max_images=args.train,
        model_id="toy-bird",
        settings_overrides={"iterations": args.iterations},
    )
    times: dict[str, Any] = {}
    with timed(times, "mine"):
        run_mine(request, store_dir)

    def birds(name: str) -> list[Any]:
        return list(load_dataset(sets[name]).select(split="test", label="bird").records)

    test, other = birds("mined"), birds("other")
    with open_store(store_dir, read_only=True) as store:

        def evaluate(records: list[Any]) -> Callable[[], Any]:
            # the graph and its CNN are read inside the timing, as the command reads them
            return lambda: evaluate_stability(
                LoadedGraph.open(store, "toy-bird", cache_dir=cache), records
            )

        with timed(times, "evaluate_cold"):
            evaluate(test)()
        with timed(times, "evaluate_warm"):
            evaluate(test)()
        with timed(times, "evaluate_new_images"):
            report = evaluate(other)()
        loaded = LoadedGraph.open(store, "toy-bird", cache_dir=cache)
    model = loaded.model
    with timed(times, "inference_new_images"):
        features = extract_features(
            model,
            other,
            loaded.layer_names,
            cache_dir=root / "plain-cache",
            mirror=loaded.graph.settings.use_flip,
        )
        infer_graph(loaded.graph, features, 0, features.num_images)
    with timed(times, "inference_only"):
        infer_graph(loaded.graph, features, 0, features.num_images)

    print(
        f"toy CNN, {args.train} training birds, {args.iterations} iterations; "
        f"{len(test)} test birds, {len(other)} birds of another set; "
        f"torch threads {torch.get_num_threads()}"
    )
    for name, t in times.items():
        print(f"  {name:<22} cpu {t['cpu']:7.1f} s   wall {t['wall']:7.1f} s")
    ratio = times["evaluate_new_images"]["cpu"] / times["inference_new_images"]["cpu"]
    print(
        f"evaluate stability on new images / plain inference pass (features + inference), CPU: "
        f"{ratio:.2f} (goal <= 2)"
    )
    detectors = sorted(report.to_dict().get("controls", {}))
    print(f"controls reported: {', '.join(detectors) or 'none'}")


if __name__ == "__main__":
    main()
