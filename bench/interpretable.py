"""Ordinary vs interpretable toy CNN on the same data and seed: does the filter loss pay off?

Prints every command it runs and one table of figures (also written as JSON with ``--json``):

1. the synthetic dataset (``explgraph dataset synth --seed SEED``; SEED = 2026 is the evaluation
   seed of the faithfulness work, nothing is tuned on it);
2. both CNNs (``explgraph train --data ... --seed SEED``, the second with ``--interpretable``);
   classification accuracy on the test split;
3. the interpretable layer's raw filters in both nets, on every test crop (all categories, part
   names pooled): location instability of the arg-max with the fixed-point control, and part
   purity (definitions in :mod:`queries.filter_parts` and docs/interpretable.md);
4. a figure of each filter's activation regions on a few bird crops, ordinary vs interpretable;
5. unless ``--no-graph``: both mined into one store (``explgraph mine --label bird``), then
   ``explgraph evaluate stability`` (patterns vs raw filters with the controls), ``explgraph
   compare``, ``explgraph evaluate parts`` (3 shots) and, from the store, the patterns per filter
   that fire.

Example:
    PYTHONPATH=. python bench/interpretable.py --seed 2026 --epochs 6 --warm-start-epochs 4 \
        --tau 0.05 --filter-loss-weight 0.02 --work /tmp/icnn2026 \
        --figure docs/img/interpretable_filters.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from miner.data.folder import load_dataset  # noqa: E402
from miner.data.images import crop_to_box, full_box, load_image, to_crop_coords  # noqa: E402
from miner.data.records import ImageRecord  # noqa: E402
from miner.models import layer_geometry, load_model  # noqa: E402
from miner.models.checkpoint import read_checkpoint  # noqa: E402
from queries.filter_parts import filter_part_report  # noqa: E402


def run(args: list[str], capture: bool = False) -> str:
    """Run an ``explgraph`` command (printed first); return its stdout when captured."""
    command = [sys.executable, "-m", "explgraph", *args]
    print("$ explgraph " + " ".join(args), flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, check=True, text=True, env=env, capture_output=capture)
    return done.stdout if capture else ""


def crops_and_parts(
    records: list[ImageRecord], size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Crops ``[N, 3, S, S]`` uint8, parts ``[N, J, 2]`` crop px, visibility, part names."""
    names = sorted({name for record in records for name in record.parts})
    images, points = [], np.zeros((len(records), len(names), 2))
    shown = np.zeros((len(records), len(names)), dtype=bool)
    for i, record in enumerate(records):  # per-image file reads
        image = load_image(record.path)
        box = record.box if record.box is not None else full_box(image)
        images.append(np.asarray(crop_to_box(image, box, size), dtype=np.uint8))
        for j, name in enumerate(names):
            keypoint = record.parts.get(name)
            if keypoint is not None and keypoint.visible:
                points[i, j] = to_crop_coords(np.array([keypoint.x, keypoint.y]), box, size)
                shown[i, j] = True
    crops = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return crops, torch.from_numpy(points).float(), torch.from_numpy(shown), names


@torch.no_grad()
def layer_maps(checkpoint: Path, layer: str, crops: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """The rectified responses of ``layer`` (a conv module) on ``crops`` and the layer geometry."""
    loaded = load_model(str(checkpoint))
    module = loaded.module
    captured: list[torch.Tensor] = []
    handle = module.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: captured.append(torch.relu(out))
    )
    mean = torch.tensor(loaded.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std).view(1, 3, 1, 1)
    try:
        for start in range(0, len(crops), 100):
            module((crops[start : start + 100].float() / 255 - mean) / std)
    finally:
        handle.remove()
    geometry = layer_geometry(loaded, [layer])[0]
    return torch.cat(captured), geometry


def activation_figure(
    crops: torch.Tensor,
    panels: list[tuple[str, torch.Tensor]],
    path: Path,
    n_filters: int = 6,
    cell: int = 64,
) -> None:
    """Rows = each model's most active filters, columns = crops; red = the map's top region."""
    n_images = crops.shape[0]
    gap, header = 8, 18
    width = len(panels) * (n_images * cell) + (len(panels) - 1) * gap * 2
    height = header + n_filters * cell
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for p, (title, maps) in enumerate(panels):
        left = p * (n_images * cell + gap * 2)
        draw.text((left + 2, 3), title, fill="black")
        strongest = maps.flatten(2).amax(-1).mean(0).argsort(descending=True)[:n_filters]
        for row, f in enumerate(strongest.tolist()):
            for col in range(n_images):
                crop = Image.fromarray(crops[col].permute(1, 2, 0).numpy()).resize((cell, cell))
                base = np.asarray(crop, dtype=np.float32) * 0.55
                response = maps[col, f][None, None]
                up = torch.nn.functional.interpolate(
                    response, size=(cell, cell), mode="bilinear", align_corners=False
                )[0, 0]
                peak = float(maps[:, f].max())
                strength = (up / peak).clamp(0, 1).numpy() if peak > 0 else np.zeros((cell, cell))
                region = strength >= 0.5  # the filter's activation region: half its peak or more
                base[region] = base[region] * 0.3 + np.array([255, 0, 0]) * 0.7
                tile = Image.fromarray(base.clip(0, 255).astype(np.uint8))
                canvas.paste(tile, (left + col * cell, header + row * cell))
            draw.text((left + 2, header + row * cell + 2), f"f{f}", fill="yellow")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)


def patterns_per_filter(store: Path, model_id: str, layer: str) -> dict[str, float]:
    """Per filter of ``layer``: patterns that fire at all, and the perplexity of firing mass."""
    from graphstore import open_store

    with open_store(str(store), read_only=True) as handle:
        rows = handle.query(
            "MATCH (i:Image)-[r:FIRES]->(p:Pattern) WHERE p.model_id = $m AND p.layer = $l "
            "RETURN p.filter AS filter, p.idx AS idx, sum(r.score) AS mass, count(r) AS fires",
            {"m": model_id, "l": layer},
        )
        total = handle.query(
            "MATCH (f:Filter) WHERE f.model_id = $m AND f.layer = $l "
            "RETURN count(f) AS filters, sum(f.n_patterns) AS patterns",
            {"m": model_id, "l": layer},
        )[0]
    per_filter: dict[int, list[float]] = {}
    for row in rows:
        per_filter.setdefault(int(row["filter"]), []).append(float(row["mass"]))
    active = [len(v) for v in per_filter.values()]
    perplexity = []
    for masses in per_filter.values():
        share = np.asarray(masses) / max(sum(masses), 1e-12)
        share = share[share > 0]
        perplexity.append(float(np.exp(-(share * np.log(share)).sum())))
    n_filters = int(total["filters"])
    return {
        "patterns_per_filter": float(total["patterns"]) / max(n_filters, 1),
        "firing_patterns_per_filter": float(np.sum(active)) / max(n_filters, 1),
        "firing_perplexity_per_filter": float(np.mean(perplexity)) if perplexity else math.nan,
    }


def save(result: dict[str, Any], path: Path | None) -> None:
    """Write the figures so far (each stage saves, so a stopped run keeps what it measured)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str))


def graph_figures(
    args: argparse.Namespace, checkpoints: dict[str, Path], data: Path, result: dict[str, Any]
) -> None:
    """Mine both nets into one store; stability, 3-shot parts, patterns per filter, compare."""
    store = args.work / "store"
    ids = {kind: f"toy-{kind}-{args.label}" for kind in checkpoints}
    annotations = str(data / "annotations.json")
    base = ["--store", str(store), "--quiet"]
    device = ["--device", args.device]
    errors: list[str] = result.setdefault("errors", [])

    def step(command: list[str]) -> Any:
        try:
            return json.loads(run(command, capture=True)) if "--json" in command else run(command)
        except subprocess.CalledProcessError as error:
            errors.append(f"{' '.join(command[:6])}: exit {error.returncode}: {error.stderr}")
            return None

    for kind, path in checkpoints.items():
        graph: dict[str, Any] = result[kind].setdefault("graph", {})
        step(
            [
                *base,
                "mine",
                str(path),
                "--images",
                str(data),
                "--label",
                args.label,
                "--split",
                "train",
                "--layers",
                args.mine_layers,
                "--model-id",
                ids[kind],
                "--seed",
                str(args.seed),
                *device,
                *args.mine_args.split(),
            ]
        )
        try:
            graph.update(patterns_per_filter(store, ids[kind], args.layer))
        except Exception as error:  # a failed mine leaves no model: note it, go on
            errors.append(f"patterns per filter of {ids[kind]}: {error}")
        save(result, args.json)
        graph["stability"] = step(
            [
                *base,
                "evaluate",
                "stability",
                ids[kind],
                "--annotations",
                annotations,
                "--json",
                *device,
                *(["--no-controls"] if args.no_controls else []),
            ]
        )
        save(result, args.json)
        graph["parts"] = step(
            [
                *base,
                "evaluate",
                "parts",
                ids[kind],
                "--part",
                args.part,
                "--annotations",
                annotations,
                "--n-shots",
                "3",
                "--json",
                *device,
            ]
        )
        save(result, args.json)
    compare = step(
        [
            *base,
            "compare",
            ids["ordinary"],
            ids["interpretable"],
            "--annotations",
            annotations,
            "--json",
            *device,
        ]
    )
    if compare is not None:
        result["compare"] = {k: v for k, v in compare.items() if k != "matches"}
    save(result, args.json)


def _get(row: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(row, dict) or row.get(key) is None:
            return None
        row = row[key]
    return row


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def markdown_table(result: dict[str, Any], layer: str) -> str:
    """The comparison as a Markdown table (ordinary vs interpretable)."""
    rows: list[tuple[str, str, str]] = []

    def add(label: str, keys: tuple[str, ...], spec: str = ".3f") -> None:
        values = [_get(result.get(kind, {}), *keys) for kind in ("ordinary", "interpretable")]
        rows.append((label, _fmt(values[0], spec), _fmt(values[1], spec)))

    add("test accuracy", ("test_accuracy",), ".1%")
    add("filter loss per filter (last epoch)", ("last_filter_loss",), ".4f")
    add(f"{layer} raw-filter instability", ("raw_filters", "instability"))
    add("  fixed-point control", ("raw_filters", "fixed_point_instability"))
    add("part-pure filters (purity >= 0.8)", ("raw_filters", "pure_share"), ".1%")
    add("mean filter purity", ("raw_filters", "mean_purity"), ".2f")
    add("dead filters", ("raw_filters", "dead_filters"), "d")
    add("patterns per filter (mined)", ("graph", "patterns_per_filter"), ".1f")
    add("  of them firing", ("graph", "firing_patterns_per_filter"), ".1f")
    add("  firing perplexity", ("graph", "firing_perplexity_per_filter"), ".2f")
    add("graph patterns instability", ("graph", "stability", "patterns_instability"))
    add("  raw filters (bird, mined layers)", ("graph", "stability", "filters_instability"))
    add("  patterns at initialisation", ("graph", "stability", "controls", "initialisation"))
    add("3-shot head localisation, AOG", ("graph", "parts", "aog"))
    add("  raw-filter voting", ("graph", "parts", "baselines", "raw_filters"))
    lines = ["| figure | ordinary | interpretable |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="data, training and mining seed")
    parser.add_argument("--n", type=int, default=1200, help="synthetic images")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--layer", default="block4_conv2", help="the interpretable layer")
    parser.add_argument("--tau", type=float, default=None, help="template scale (paper: 0.5/n^2)")
    parser.add_argument("--filter-loss-weight", type=float, default=1.0)
    parser.add_argument("--label", default="bird", help="category mined into the graph")
    parser.add_argument("--part", default="head", help="part of the 3-shot localisation")
    parser.add_argument("--mine-layers", default="block4_conv1,block4_conv2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="device of mining and graph queries")
    parser.add_argument(
        "--mine-args", default="", help="extra `explgraph mine` options, e.g. '--max-images 100'"
    )
    parser.add_argument(
        "--no-controls", action="store_true", help="evaluate stability without its controls"
    )
    parser.add_argument(
        "--warm-start-epochs",
        type=int,
        default=0,
        help="paper protocol: train an ordinary net for --epochs (work/base.pt), then BOTH nets "
        "start from it for this many more epochs, with and without the filter loss",
    )
    parser.add_argument(
        "--finetune-lr", type=float, default=1e-3, help="peak learning rate after a warm start"
    )
    parser.add_argument("--work", type=Path, required=True, help="scratch folder")
    parser.add_argument("--figure", type=Path, default=None, help="PNG of activation regions")
    parser.add_argument("--no-graph", action="store_true", help="skip mining and graph figures")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work: Path = args.work
    data = work / "data"
    if not (data / "annotations.json").is_file():
        run(["dataset", "synth", str(data), "--n", str(args.n), "--seed", str(args.seed)])
    common = ["--data", str(data), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    common += ["--threads", str(args.threads), "--quiet"]
    checkpoints = {"ordinary": work / "ordinary.pt", "interpretable": work / "interpretable.pt"}
    if args.warm_start_epochs > 0:
        # Both nets continue from the same ordinary checkpoint for the same further epochs.
        base = work / "base.pt"
        if not base.is_file():
            run(["train", *common, "--out", str(base)])
        common = ["--data", str(data), "--epochs", str(args.warm_start_epochs)]
        common += ["--seed", str(args.seed), "--threads", str(args.threads), "--quiet"]
        common += ["--warm-start", str(base), "--lr", str(args.finetune_lr)]
    if not checkpoints["ordinary"].is_file():
        run(["train", *common, "--out", str(checkpoints["ordinary"])])
    if not checkpoints["interpretable"].is_file():
        extra = ["--interpretable", "--layer", args.layer]
        extra += ["--filter-loss-weight", str(args.filter_loss_weight)]
        extra += ["--tau", str(args.tau)] if args.tau is not None else []
        run(["train", *common, *extra, "--out", str(checkpoints["interpretable"])])

    result: dict[str, Any] = {"seed": args.seed, "n_images": args.n, "epochs": args.epochs}
    if args.warm_start_epochs > 0:
        result["warm_start_epochs"] = args.warm_start_epochs
        result["finetune_lr"] = args.finetune_lr
        result["base_test_accuracy"] = read_checkpoint(work / "base.pt").meta.get("test_accuracy")
    dataset = load_dataset(data)
    test = list(dataset.select(split="test").records)
    size = read_checkpoint(checkpoints["ordinary"]).input_size or 96
    crops, landmarks, visible, names = crops_and_parts(test, size)
    maps_of: dict[str, torch.Tensor] = {}
    for kind, path in checkpoints.items():
        meta = read_checkpoint(path).meta
        maps, geometry = layer_maps(path, args.layer, crops)
        maps_of[kind] = maps
        report = filter_part_report(
            maps,
            landmarks,
            visible,
            names,
            stride=geometry.stride,
            rf_offset=geometry.rf_offset,
            diagonal=math.hypot(size, size),
        )
        history = meta.get("history") or [{}]
        result[kind] = {
            "test_accuracy": meta.get("test_accuracy"),
            "train_accuracy": meta.get("train_accuracy"),
            "last_filter_loss": history[-1].get("filter_loss"),
            "raw_filters": report.to_dict(),
        }
    if args.figure is not None:
        birds = [i for i, r in enumerate(test) if r.label == args.label][:5]
        activation_figure(
            crops[birds],
            [(f"{k} {args.layer}", maps_of[k][birds]) for k in checkpoints],
            args.figure,
        )
        result["figure"] = str(args.figure)

    save(result, args.json)
    if not args.no_graph:
        graph_figures(args, checkpoints, data, result)
    save(result, args.json)
    print(json.dumps(result, indent=2, default=str))
    print(markdown_table(result, args.layer))


if __name__ == "__main__":
    main()
