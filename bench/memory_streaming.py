"""Peak memory of ``compare``, ``diagnose`` and ``evaluate stability`` at N and 4N images.

Goal (issue 13, goal 7): the three commands stream over images, so their peak RSS stays flat
when the image count grows four times. The toy CNN's bird graph is mined once (the test
fixture's settings) into ``--work``; a synthetic dataset with enough birds is rendered beside
it. Every measurement is a fresh child process (``VmHWM`` from ``/proc/self/status``, i.e. peak
resident memory, and ``ru_maxrss``), run on the first N and then the first 4N bird images after
unmeasured warm-ups at N and 4N that fill the feature cache (feature extraction is not what is
measured). ``evaluate stability`` runs without its learned controls (they cost learning time,
not memory that grows with the images). Each child also reports the imports-only baseline::

    OMP_NUM_THREADS=1 python bench/memory_streaming.py --work /tmp/mem --n 100

``--code`` runs the children against another checkout (e.g. an export of an older commit) to
show the figures before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("compare", "diagnose", "evaluate-stability")


def _peak_kib() -> dict[str, int]:
    """Peak resident memory so far: VmHWM (Linux) and ru_maxrss, KiB."""
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), -1)
    return {"vmhwm_kib": hwm, "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def child(command: str, work: Path, n_images: int) -> None:
    """Run one command on the first ``n_images`` bird images and print its peak memory."""
    import torch

    import explgraph.cli  # noqa: F401  (registers every command before one is imported alone)
    from graphstore import open_store
    from miner.data.folder import load_dataset

    baseline = _peak_kib()
    records = list(load_dataset(work / "images").select(label="bird").records)[:n_images]
    spec, model_id, cache = str(work / "toy" / "store"), "toy_vgg-bird", work / "toy" / "cache"
    wall, cpu = time.perf_counter(), time.process_time()
    with open_store(spec, read_only=True) as store:
        from queries.loaded import LoadedGraph

        loaded = LoadedGraph.open(store, model_id, cache_dir=cache, device="cpu")
        if command == "compare":
            from queries.compare import compare_models

            compare_models(store, loaded, loaded, records)
        elif command == "diagnose":
            from queries.diagnose import diagnose

            diagnose(loaded, records)
        else:
            from queries.evaluate_stability import evaluate_stability

            evaluate_stability(loaded, records, controls=False)
    peak = _peak_kib()
    print(
        json.dumps(
            {
                "command": command,
                "images": len(records),
                "peak_rss_mb": round(peak["vmhwm_kib"] / 1024, 1),
                "ru_maxrss_mb": round(peak["ru_maxrss_kib"] / 1024, 1),
                "imports_rss_mb": round(baseline["vmhwm_kib"] / 1024, 1),
                "wall_s": round(time.perf_counter() - wall, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "threads": torch.get_num_threads(),
            }
        )
    )


def _prepare(work: Path, n_birds: int) -> None:
    """Mine the toy bird graph and render a dataset with at least ``n_birds`` birds."""
    sys.path.insert(0, str(ROOT))
    from explgraph.workflows.mine import run_mine
    from explgraph.workflows.toy import toy_request
    from miner.data.folder import load_dataset
    from miner.data.synthetic import write_synthetic

    toy = work / "toy"
    if not (toy / "store").exists():  # the tests' mined toy graph (tests/helpers/mined.py)
        if not (toy / "synth" / "annotations.json").exists():
            write_synthetic(toy / "synth", 96, size=128, seed=0)
        run_mine(
            toy_request(toy / "synth", toy / "cache", iterations=3, device="cpu"),
            str(toy / "store"),
        )
    images = work / "images"
    total = 4 * n_birds + 40  # a quarter of the synthetic images are birds
    while True:
        if not (images / "annotations.json").exists():
            write_synthetic(images, total, size=128, seed=1)
        birds = len(load_dataset(images).select(label="bird").records)
        if birds >= n_birds:
            return
        total = total * n_birds // max(1, birds) + 40
        for path in sorted(images.rglob("*"), reverse=True):  # too few: render again
            path.unlink() if path.is_file() else path.rmdir()


def _run_child(
    code: Path, command: str, work: Path, n_images: int, mmap_threshold: int | None = None
) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(code))
    if mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    done = subprocess.run(
        [sys.executable, __file__, "--child", command, "--work", str(work), "--n", str(n_images)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{command} at {n_images} images failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Prepare the data once, then measure every command at N and 4N images."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/explgraph-memory-bench", help="work folder")
    parser.add_argument("--n", type=int, default=100, help="N: bird images of the small run")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated")
    parser.add_argument("--code", default=str(ROOT), help="checkout the children import")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="the feature caches are already filled"
    )
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=None,
        help="fix glibc's mmap threshold in the children (bytes, e.g. 65536): glibc raises it "
        "after large frees, so freed chunk buffers stay in a fragmented heap and the peak "
        "creeps up with the number of chunks; a fixed threshold shows what the code holds",
    )
    parser.add_argument("--child", choices=COMMANDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    if args.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)))
        child(args.child, work, args.n)
        return
    _prepare(work, 4 * args.n)
    code = Path(args.code).resolve()
    print(f"children import {code}; MALLOC_MMAP_THRESHOLD_={args.mmap_threshold}", flush=True)
    for command in args.commands.split(","):
        for n_images in () if args.no_warm_up else (args.n, 4 * args.n):
            _run_child(code, command, work, n_images)  # warm-up: fills the feature caches
        small = _run_child(code, command, work, args.n, args.mmap_threshold)
        large = _run_child(code, command, work, 4 * args.n, args.mmap_threshold)
        print(json.dumps(small), flush=True)
        print(json.dumps(large), flush=True)
        growth = float(large["peak_rss_mb"]) - float(small["peak_rss_mb"])  # type: ignore[arg-type]
        print(
            f"{command}: peak RSS {small['peak_rss_mb']} MB at {small['images']} images, "
            f"{large['peak_rss_mb']} MB at {large['images']} ({growth:+.1f} MB)",
            flush=True,
        )


if __name__ == "__main__":
    main()
