"""Which MobileNetV2 layers to mine: does map resolution matter for locating parts? (issue 10)

For each candidate layer configuration, with no graph at all (so it is cheap): extract the
features of one synthetic category (train and test split, both orientations), then score
3-shot nearest-neighbour transfer of a part annotation by hypercolumn matching and the raw-filter
arg-max spread, over seeded shot draws. Resolution is what a graph can track at best: a
configuration whose features cannot place the part well will not give the graph anything to
track either. Use DEV seeds (11, 12, 13) only.

    .venv/bin/python bench/mobilenet_layers.py --seed 11
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = {
    "14x14+7x7 (previous default)": (
        "features.12.conv.1",
        "features.13.conv.1",
        "features.16.conv.1",
        "features.17.conv.1",
    ),
    "28x28+14x14": ("features.6.conv.1", "features.13.conv.1"),
}


def main() -> None:
    """Print NN-transfer error and left/right accuracy per configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("bench-out/mobilenet-layers"))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--images", type=int, default=480)
    parser.add_argument("--difficulty", default="hard")
    parser.add_argument("--label", default="bird")
    parser.add_argument("--parts", default="head,tail")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from faithfulness import offline_mobilenet

    from miner.data.folder import load_dataset
    from miner.data.images import full_box, load_image, to_crop_coords
    from miner.data.synthetic import write_synthetic
    from miner.features import extract_features
    from miner.models import load_model
    from queries.aog import baselines
    from queries.aog.evaluate import draw_shots, left_right_accuracy
    from queries.normalisation import TrainingNormalised

    root = args.root / f"seed{args.seed}-{args.difficulty}"
    root.mkdir(parents=True, exist_ok=True)
    offline_mobilenet(root)
    data = root / "synth"
    if not (data / "annotations.json").exists():
        write_synthetic(data, args.images, 128, args.seed, 0.5, difficulty=args.difficulty)
    dataset = load_dataset(data)
    train = list(dataset.select(split="train", label=args.label).records)
    test_all = list(dataset.select(split="test", label=args.label).records)
    model = load_model("mobilenet_v2", "IMAGENET1K_V1", device="cpu")
    size = int(model.input_size)
    diagonal = size * math.sqrt(2.0)
    for name, layers in CONFIGS.items():
        kwargs = {"cache_dir": root / "features", "device": "cpu", "mirror": True, "min_box": 1}
        train_fs = extract_features(model, train, list(layers), **kwargs)
        stds = [train_fs.std(i) for i in range(len(layers))]
        for part in args.parts.split(","):
            tests = [r for r in test_all if part in r.visible_parts()]
            test_fs = extract_features(model, tests, list(layers), **kwargs)
            source = TrainingNormalised(test_fs, stds)
            truth = torch.tensor(
                np.stack(
                    [
                        to_crop_coords(
                            np.array([r.parts[part].x, r.parts[part].y]),
                            r.box or full_box(load_image(r.path)),
                            size,
                        )
                        for r in tests
                    ]
                )
            ).float()
            errors, sides = [], []
            for d in range(args.draws):
                shots = draw_shots(train, part, 3, args.seed + d)
                shot_fs = extract_features(model, [s.record for s in shots.shots], list(layers),
                                           **kwargs)  # fmt: skip
                shot_src = TrainingNormalised(shot_fs, stds)
                parts = np.stack(
                    [
                        to_crop_coords(
                            np.array([s.x, s.y]),
                            s.record.box or full_box(load_image(s.record.path)),
                            size,
                        )
                        for s in shots.shots
                    ]
                )
                desc = baselines.shot_descriptors(shot_src, parts, size=size)
                xy = baselines.nn_transfer(desc, source, 0, source.num_images, size=size)
                errors.append(float(((xy - truth).norm(dim=1) / diagonal).mean()))
                sides.append(left_right_accuracy(xy, truth, size))
            finest = max(source.layers, key=lambda g: g.height)
            print(
                f"{name:>30} {part:>5}: finest map {finest.height}x{finest.width}, NN transfer "
                f"{np.mean(errors):.3f} ± {np.std(errors, ddof=1):.3f} over {args.draws} draws, "
                f"left/right {np.mean(sides):.2f} ({len(tests)} test objects, seed {args.seed})",
                flush=True,
            )


if __name__ == "__main__":
    main()
