"""Compare the mining memory estimate (miner.memory) with the measured peak RSS of real runs.

Each configuration runs ``explgraph.workflows.mine.run_mine`` in a fresh subprocess (so peaks do not
mix), records the estimate the run computed before starting, and the process's peak resident
memory (``ru_maxrss``) at the end. Prints one line per run: estimate, measured, ratio.

    PYTHONPATH=$PWD python bench/memory_estimate.py [--images N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import explgraph.workflows.mine as mining
import explgraph.workflows.mine.plan as plan

config = json.loads(sys.argv[1])
seen = {}
original = plan.check_mining_fits

def record(estimate, **kwargs):
    seen["estimate"] = estimate.peak
    seen["base"] = estimate.base
    seen["worst"] = estimate.worst.dominant if estimate.worst else None
    return original(estimate, **kwargs)

plan.check_mining_fits = record  # the workflow's refusal before work
request = mining.MineRequest(
    model=config["model"],
    images=Path(config["images"]),
    cache_dir=Path(config["cache"]),
    split=None,
    max_images=config["n"],
    settings_overrides=config["settings"],
    max_memory="1T",
)
mining.run_mine(request, config["store"])
seen["measured"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(seen))
"""

CONFIGS = {
    "two_convs@224, density 0.004": {
        "model": "bench.memory_models:two_convs",
        "settings": {"iterations": 2, "density_top": 0.004, "density_low": 0.004},
    },
    "two_convs@224, density 0.002, chunk 8": {
        "model": "bench.memory_models:two_convs",
        "settings": {"iterations": 2, "density_top": 0.002, "density_low": 0.002, "chunk_size": 8},
    },
}


def main() -> None:
    """Run every configuration and print estimate vs measured peak."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()
    from miner.data.synthetic import write_synthetic
    from miner.memory import format_bytes

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_synthetic(root / "data", n=args.images, size=128)
        for index, (name, config) in enumerate(CONFIGS.items()):
            payload = {
                **config,
                "images": str(root / "data"),
                "cache": str(root / f"cache{index}"),
                "store": str(root / f"store{index}"),
                "n": args.images,
            }
            done = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(payload)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            seen = json.loads(done.stdout.strip().splitlines()[-1])
            ratio = seen["estimate"] / seen["measured"]
            print(
                f"{name}: estimate {format_bytes(seen['estimate'])} "
                f"(base {format_bytes(seen['base'])}, dominant: {seen['worst']}), "
                f"measured peak RSS {format_bytes(seen['measured'])}, ratio {ratio:.2f}"
            )


if __name__ == "__main__":
    main()
