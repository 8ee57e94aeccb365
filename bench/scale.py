"""The paper's full configuration, timed stage by stage, and projected to 2,000 images.

VGG-16 (random weights: the timing does not depend on them, and nothing is downloaded), its
default layers conv4_2, conv4_3, conv5_2, conv5_3 (61,440 patterns), mirrored images, 224-px
input, ``--iterations`` EM iterations per layer (the paper: 20), on synthetic images. For each N
in ``--images`` a child process (its own peak RSS) times, separately:

- ``features``: decoding, forward passes (image and mirror), normalisation, the on-disk cache;
- ``learn``: per layer the mean seconds of one EM iteration and the final pass;
- ``inference``: the firings pass over the training images (what ``explgraph mine`` runs);
- ``write``: the graph, edges and firings into an embedded store.

Then every stage is fitted as ``a + b·N`` over the measured N and projected to ``--project``
images and the paper's 20 iterations (learning = iterations × per-iteration + final pass). Each
time is wall clock after ``torch.cuda.synchronize()`` on a GPU; on the CPU the process CPU time
is printed beside it (the machine may be shared). Examples::

    python bench/scale.py --images 16 32 --iterations 2             # CPU, minutes
    python bench/scale.py --images 16 64 --iterations 2 --fit line --threads 1  # per-core CPU s
    python bench/scale.py --model mobilenet_v2 --images 16 64 --fit line --threads 1
    python bench/scale.py --device cuda --images 2000 --iterations 20 # the full job on a GPU
    python bench/scale.py --device cuda --images 64 256 --iterations 2  # quick GPU check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import children  # bench/children.py, beside this script
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VGG_PATTERNS = 61_440
PAPER_ITERATIONS = 20


class Clock:
    """Wall and CPU seconds of a stage; waits for the GPU before reading the clock."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.started = 0.0
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Clock:
        self._sync()
        self.started, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self._cpu

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class StageStamps:
    """A silent progress that stamps each bar's opening and steps with the stage clock: CPU time
    on the CPU (the machine may be shared), wall time after a GPU synchronise on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bars: dict[str, list[float]] = {}

    def now(self) -> float:
        """The stage clock."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return time.perf_counter()
        return time.process_time()

    @contextlib.contextmanager
    def task(self, description: str, total: float | None) -> Iterator[StageStamps]:
        """One bar: stamps on opening and on every step."""
        stamps = self.bars.setdefault(description, [])
        stamps.append(self.now())
        self._current = stamps
        yield self

    def advance(self, steps: float = 1) -> None:
        """Stamp a step of the open bar."""
        self._current.append(self.now())

    def log(self, message: str) -> None:
        """Silent."""

    def mean_step(self, description: str) -> float:
        """Mean seconds between consecutive steps of a bar."""
        stamps = self.bars.get(description, [])
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else 0.0


def measure(
    n: int,
    iterations: int,
    device_name: str,
    workdir: Path,
    batch: int,
    threads: int = 0,
    model_name: str = "vgg16",
) -> dict[str, Any]:
    """One N: all four stages in this process (run as a child); ``threads`` > 0 pins torch's
    CPU threads (1 gives per-core CPU seconds that a shared machine does not inflate)."""
    if threads:
        torch.set_num_threads(threads)
    from explgraph.workflows.rows import graph_records
    from graphstore import open_store
    from miner.data.folder import load_dataset
    from miner.data.synthetic import write_synthetic
    from miner.features import extract_features
    from miner.graph import GraphSettings, infer_graph, learn_graph
    from miner.graph.kernels import warm_up
    from miner.mining import MiningResult, select_firings
    from miner.models import load_model, resolve_device, resolve_layers

    device = resolve_device(device_name)
    data = workdir / f"synth-{n}"
    if not (data / "annotations.json").exists():
        write_synthetic(data, n, size=224, seed=0)
    records = list(load_dataset(data).records)[:n]
    model = load_model(model_name, "none", device="cpu")
    layers = resolve_layers(model, None)
    settings = GraphSettings(iterations=iterations)
    warm_up(settings.torch_dtype)  # numba's one-off load/compile stays out of the stage clocks
    out: dict[str, Any] = {
        "images": len(records),
        "iterations": iterations,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=workdir) as tmp:
        with Clock(device) as clock:
            features = extract_features(
                model,
                records,
                layers,
                cache_dir=Path(tmp) / "features",
                device=str(device),
                batch_size=batch,
                mirror=settings.use_flip,
            )
        out["features"] = {"wall": clock.wall, "cpu": clock.cpu}
        # the bare forward pass of the whole network on the same number of images (one
        # orientation), the yardstick of issue 13's inference goal
        module = model.module.to(device).eval()
        with torch.no_grad(), Clock(device) as clock:
            for start in range(0, len(records), batch):
                size = min(batch, len(records) - start)
                module(torch.rand(size, 3, model.input_size, model.input_size, device=device))
        out["forward"] = {"wall": clock.wall, "cpu": clock.cpu}
        timer = StageStamps(device)
        with Clock(device) as clock:
            learn_start = timer.now()
            graph = learn_graph(features, settings, device=device, progress=timer)
            learn_end = timer.now()
        out["learn"] = {"wall": clock.wall, "cpu": clock.cpu}
        out["stage_clock"] = "wall" if device.type == "cuda" else "cpu"
        del learn_start
        per_iteration = {
            lp.geometry.name: timer.mean_step(f"learn {lp.geometry.name}") for lp in graph.layers
        }
        # what a layer took besides its iterations (the final pass), from the bar's stamps
        layer_total = {}
        stamps = {name: timer.bars[f"learn {name}"] for name in per_iteration}
        names = [lp.geometry.name for lp in graph.layers][::-1]  # learned top-down
        for here, below in zip(names, [*names[1:], None], strict=True):
            end = stamps[below][0] if below is not None else learn_end
            layer_total[here] = end - stamps[here][0]
        out["em_per_iteration"] = per_iteration
        out["layer_after_iterations"] = {
            name: max(layer_total[name] - iterations * per_iteration[name], 0.0)
            for name in per_iteration
        }
        out["patterns"] = sum(lp.num_patterns for lp in graph.layers)
        with Clock(device) as clock:
            firings = select_firings(graph, features, input_size=model.input_size, device=device)
        out["inference"] = {"wall": clock.wall, "cpu": clock.cpu}
        # the top-down pass alone (no firing selection), in the orientation learning chose
        with Clock(device) as clock:
            step = graph.settings.chunk_size
            for start in range(0, features.num_images, step):
                stop = min(start + step, features.num_images)
                infer_graph(
                    graph, features, start, stop, device=device, flipped=graph.flips[start:stop]
                )
        out["graph_pass"] = {"wall": clock.wall, "cpu": clock.cpu}
        result = MiningResult(model=model, features=features, graph=graph, firings=firings)
        with Clock(device) as clock:
            rows = graph_records(result, f"{model_name}-scale", dataset="synthetic")
            with open_store(str(Path(tmp) / "store")) as store:
                store.ensure_schema()
                store.write_model(rows)
        out["write"] = {"wall": clock.wall, "cpu": clock.cpu}
    out["peak_rss_mb"] = children.peak_rss_mb()
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def fit(xs: list[float], ys: list[float], at: float, line: bool) -> float:
    """Projection to ``at`` images: proportional to N from the largest N (default: robust on a
    shared machine), or the least-squares line through every N (``line``)."""
    if not line or len(xs) == 1:
        largest = max(range(len(xs)), key=lambda i: xs[i])
        return ys[largest] / xs[largest] * at
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return my + slope * (at - mx)


def project(rows: list[dict[str, Any]], target: int, iterations: int, line: bool) -> dict[str, Any]:
    """Every stage projected to ``target`` images and ``iterations``, on the stage clock (CPU
    seconds on the CPU, wall seconds on a GPU)."""
    ns = [float(r["images"]) for r in rows]
    clock = rows[0]["stage_clock"]
    out: dict[str, Any] = {"images": target, "iterations": iterations, "clock": clock}
    for stage in ("features", "inference", "write"):
        out[stage] = fit(ns, [r[stage][clock] for r in rows], target, line)
    learn = {}
    for name in rows[0]["em_per_iteration"]:
        per_it = fit(ns, [r["em_per_iteration"][name] for r in rows], target, line)
        rest = fit(ns, [r["layer_after_iterations"][name] for r in rows], target, line)
        learn[name] = {"per_iteration": per_it, "layer": iterations * per_it + rest}
    out["learn"] = learn
    out["total"] = (
        out["features"] + out["inference"] + out["write"] + sum(v["layer"] for v in learn.values())
    )
    out["em_iteration_over_features"] = {
        name: v["per_iteration"] / out["features"] for name, v in learn.items()
    }
    return out


def print_rows(rows: list[dict[str, Any]], projection: dict[str, Any]) -> None:
    """The measured stages per N, then the projection."""
    for r in rows:
        clock = r["stage_clock"]
        print(
            f"N={r['images']} ({r['device']}, {r['iterations']} it, {r['patterns']} patterns): "
            f"features {r['features']['wall']:.1f}s (cpu {r['features']['cpu']:.1f}), "
            f"learn {r['learn']['wall']:.1f}s (cpu {r['learn']['cpu']:.1f}), "
            f"inference {r['inference']['wall']:.1f}s, write {r['write']['wall']:.1f}s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MiB"
        )
        if "graph_pass" in r:
            forward = r["forward"][clock]
            print(
                f"    graph pass alone {r['graph_pass'][clock]:.1f} {clock} s "
                f"= {r['graph_pass'][clock] / forward:.3f} x the bare forward pass "
                f"(inference with firing selection {r['inference'][clock] / forward:.3f} x)"
            )
        for name, sec in r["em_per_iteration"].items():
            print(
                f"    {name:<10} EM {sec:8.2f} {clock} s/iteration  "
                f"= {sec / r['features'][clock]:.3f} x features; "
                f"final pass {r['layer_after_iterations'][name]:.1f}s"
            )
    p = projection
    print(
        f"\nprojected to N={p['images']}, {p['iterations']} iterations per layer "
        f"({p['clock']} seconds; CPU seconds of a stage that keeps both cores busy take about "
        "half as long on 2 free cores):"
    )
    print(f"  features  {p['features'] / 60:8.1f} min")
    for name, v in p["learn"].items():
        print(
            f"  learn {name:<10} {v['layer'] / 60:6.1f} min "
            f"({v['per_iteration']:.1f} s/iteration, "
            f"{p['em_iteration_over_features'][name]:.3f} x features)"
        )
    print(f"  inference {p['inference'] / 60:8.1f} min")
    print(f"  write     {p['write'] / 60:8.1f} min")
    print(f"  total     {p['total'] / 60:8.1f} min  (goal: < 120 on 2 CPU cores, < 5 on a GPU)")
    if p["clock"] == "cpu" and rows[0].get("threads") == 1:
        # under torchrun rank 0 extracts features (2 threads) and infers/writes alone; the
        # learning is split between the two ranks
        learn = sum(v["layer"] for v in p["learn"].values())
        wall = (p["features"] + learn) / 2 + p["inference"] + p["write"]
        print(
            f"  on 2 free cores (torchrun --nproc-per-node 2, OMP_NUM_THREADS=1 per rank for "
            f"learning): about {wall / 60:.1f} min wall, assuming perfect 2-way splits"
        )


def main() -> None:
    """Parse the flags; run one child per N; print the table and the projection."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, nargs="+", default=[16, 32], help="N per child")
    ap.add_argument("--iterations", type=int, default=2, help="EM iterations per layer")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--model", default="vgg16", help="torchvision name, random weights, default layers"
    )
    ap.add_argument("--project", type=int, default=2000, help="images to project to")
    ap.add_argument("--project-iterations", type=int, default=PAPER_ITERATIONS)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale")
    ap.add_argument("--fit", choices=["proportional", "line"], default="proportional")
    ap.add_argument("--json", action="store_true", help="also print the raw results")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        row = measure(
            args.images[0], args.iterations, args.device, args.workdir, args.batch_size,
            args.threads, args.model,
        )  # fmt: skip
        print(json.dumps(row))
        return
    rows = []
    for n in args.images:
        done = children.run_child(
            __file__,
            ["--images", str(n), "--iterations", str(args.iterations), "--device", args.device,
             "--batch-size", str(args.batch_size), "--workdir", str(args.workdir),
             "--threads", str(args.threads), "--model", args.model],
        )  # fmt: skip
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-6:])
            print(f"N={n}: child failed (exit {done.returncode}): {tail}", file=sys.stderr)
            sys.exit(1)
        rows.append(children.child_result(done))
        print(f"# N={n} done: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    projection = project(rows, args.project, args.project_iterations, args.fit == "line")
    print_rows(rows, projection)
    if args.json:
        print(json.dumps({"runs": rows, "projection": projection}, indent=2))


if __name__ == "__main__":
    main()
