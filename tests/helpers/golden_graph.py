"""A tiny fixed learning + inference problem whose outputs are pinned in a golden file.

The golden file ``tests/assets/graph_golden.npz`` was written by the implementation *before* the
speed work of issue 13 (commit f255edb), with::

    PYTHONPATH=$PWD python -m tests.helpers.golden_graph --write

and :mod:`tests.unit.test_graph_golden` checks that today's code still gives the same graph and
the same inference on it. Re-writing the file is only right when the method itself changes on
purpose (say so in the commit); a speed change must leave it alone.

The problem: three layers (two at stride 8, one at stride 16) with planted moving blobs plus
noise, mirrored maps, the flip choice on, parents on. It runs in float64 (so that summation
order changes stay ~1e-12 and cannot flip an arg-max) and in float32 (the default dtype).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from miner.graph import GraphSettings, TensorFeatures, infer_graph, learn_graph
from miner.models.spec import LayerGeometry

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "graph_golden.npz"
IMAGES = 20
LAYERS = [
    LayerGeometry("low", 0, 4, 16, 16, 8.0, 40.0, 4.0),
    LayerGeometry("mid", 1, 4, 16, 16, 8.0, 60.0, 4.0),
    LayerGeometry("top", 2, 4, 8, 8, 16.0, 90.0, 8.0),
]
DTYPES = ("float64", "float32")


def golden_features() -> TensorFeatures:
    """Blobs at 3 moving parts (each filter fires at one or two of them) plus noise, mirrored."""
    gen = torch.Generator().manual_seed(1234)
    parts = 0.25 + 0.5 * torch.rand(3, 2, generator=gen, dtype=torch.float64)
    where = parts[None] + 0.07 * torch.randn(IMAGES, 3, 2, generator=gen, dtype=torch.float64)
    where = where.clamp(0.1, 0.9)
    maps: list[torch.Tensor] = []
    mirrored: list[torch.Tensor] = []
    for g in LAYERS:
        own = torch.randint(0, 3, (g.channels, 2), generator=gen)
        ys = torch.arange(g.height, dtype=torch.float64)[:, None]
        xs = torch.arange(g.width, dtype=torch.float64)[None, :]
        blobs = torch.zeros(IMAGES, g.channels, g.height, g.width, dtype=torch.float64)
        for k in range(2):
            c = where[:, own[:, k]] * (g.height - 1)  # [n, C, 2]
            d2 = (xs - c[..., 0, None, None]) ** 2 + (ys - c[..., 1, None, None]) ** 2
            blobs += (0.5 + 0.5 * k) * torch.exp(-d2 / (2 * (0.06 * g.height) ** 2 + 0.5))
        # each orientation gets its own noise, so which one explains an image better varies
        for out in (maps, mirrored):
            noise = 0.1 * torch.rand(blobs.shape, generator=gen, dtype=torch.float64)
            out.append((blobs + noise).float())
    flipped = [m.flip(-1) for m in mirrored]
    return TensorFeatures(maps, LAYERS, flipped_maps=flipped, key="golden")


def golden_settings(dtype: str) -> GraphSettings:
    """Small but complete: parents, candidate pool, flips, several iterations, sub-chunks."""
    return GraphSettings(
        density=(4 / 256, 4 / 256, 3 / 64),
        parents=3,
        candidate_pool=8,
        iterations=4,
        chunk_size=7,  # not a divisor of IMAGES: exercises the last short chunk
        work_elements=1 << 12,  # small: exercises the image sub-slices
        seed=5,
        dtype=dtype,
    )


def golden_outputs(dtype: str) -> dict[str, np.ndarray]:
    """Everything the graph and its inference hold, as named arrays (``<dtype>/<name>``)."""
    features = golden_features()
    graph = learn_graph(features, golden_settings(dtype))
    out: dict[str, np.ndarray] = {"flips": graph.flips.numpy()}
    for i, lp in enumerate(graph.layers):
        for name in (
            "mu",
            "sigma",
            "parents",
            "parent_weight",
            "parent_mean",
            "mean_position",
            "mean_score",
        ):
            value = getattr(lp, name)
            out[f"layer{i}/{name}"] = value.numpy() if name == "parents" else value.double().numpy()
        out[f"layer{i}/soft_norm"] = np.array(lp.soft_norm)
        out[f"layer{i}/explained_share"] = np.array(lp.explained_share)
    chosen = infer_graph(graph, features, 0, IMAGES)  # flip chosen per image
    forced = infer_graph(graph, features, 3, 15, flipped=graph.flips[3:15])
    for tag, inf in (("chosen", chosen), ("forced", forced)):
        out[f"{tag}/flipped"] = inf.flipped.numpy()
        for i, li in enumerate(inf.layers):
            for name in ("positions", "expected", "score", "soft"):
                out[f"{tag}/layer{i}/{name}"] = getattr(li, name).double().numpy()
    return {f"{dtype}/{k}": v for k, v in out.items()}


def main() -> None:
    """Write the golden file (only when the method changes on purpose)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help="overwrite tests/assets/graph_golden.npz")
    args = ap.parse_args()
    arrays: dict[str, np.ndarray] = {}
    for dtype in DTYPES:
        arrays.update(golden_outputs(dtype))
    if args.write:
        np.savez_compressed(GOLDEN, **arrays)  # type: ignore[arg-type]  # numpy stub: names
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes, {len(arrays)} arrays)")
    else:
        print(f"{len(arrays)} arrays; pass --write to store them")


if __name__ == "__main__":
    main()
