"""Writing the synthetic dataset to disk as PNG files plus an ``annotations.json``."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from explgraph.core.errors import InputError
from explgraph.core.progress import NULL_PROGRESS, Progress
from miner.data.annotations import write_annotations
from miner.data.records import Dataset, ImageRecord
from miner.data.synthetic.categories import CATEGORIES, CATEGORY_PARTS
from miner.data.synthetic.styles import DEFAULT_STYLE, renderer

ANNOTATION_FILE = "annotations.json"


def write_synthetic(
    out_dir: Path | str,
    n: int,
    size: int = 128,
    seed: int = 0,
    test_fraction: float = 0.25,
    progress: Progress = NULL_PROGRESS,
    difficulty: str = "normal",
    style: str = DEFAULT_STYLE,
) -> Dataset:
    """Render samples ``0 .. n-1`` into ``out_dir/<category>/<index>.png`` with annotations.

    ``out_dir/annotations.json`` (see :mod:`miner.data.annotations`) records boxes, keypoints,
    labels, splits and the generator settings, so ``load_dataset(out_dir)`` reads it back. The
    same arguments always give the same bytes. ``style`` picks the look
    (:mod:`miner.data.synthetic.styles`; the default look's output is unchanged by the option).

    Example:
        >>> import tempfile
        >>> data = write_synthetic(tempfile.mkdtemp(), n=8, size=64, seed=3)
        >>> len(data), data.categories
        (8, ('quadruped', 'bird', 'fish', 'giraffe'))
    """
    if n < 1:
        raise InputError(f"asked for {n} synthetic images: give --n 1 or more")
    render_sample = renderer(style)
    out = Path(out_dir)
    for category in CATEGORIES:
        (out / category).mkdir(parents=True, exist_ok=True)
    records: list[ImageRecord] = []
    with progress.task("rendering synthetic images", n) as bar:
        for index in range(n):
            sample = render_sample(
                index, size, seed, test_fraction=test_fraction, difficulty=difficulty
            )
            path = out / sample.label / f"{index:06d}.png"
            # Level 1: noisy images barely compress better at higher levels, and take 3x longer.
            Image.fromarray(sample.image).save(path, format="PNG", compress_level=1)
            records.append(sample.to_record(path))
            bar.advance()
    dataset = Dataset(
        name=out.name or "synthetic", root=out, records=tuple(records), categories=CATEGORIES
    )
    meta = {
        "generator": "explgraph synthetic parts",
        "n": n,
        "size": size,
        "seed": seed,
        "test_fraction": test_fraction,
        "category_parts": {c: list(p) for c, p in CATEGORY_PARTS.items()},
    }
    if difficulty != "normal":  # the normal dataset's annotations stay byte-identical
        meta["difficulty"] = difficulty
    if style != DEFAULT_STYLE:  # so does the default look's
        meta["style"] = style
    write_annotations(dataset, out / ANNOTATION_FILE, meta=meta)
    return dataset


__all__ = ["ANNOTATION_FILE", "write_synthetic"]
