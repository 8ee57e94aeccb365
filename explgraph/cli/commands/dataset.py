"""``explgraph dataset``: make the synthetic parts dataset, and describe any dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from explgraph.cli.state import state

if TYPE_CHECKING:
    from miner.data.records import Dataset

dataset_app = typer.Typer(
    help="Build the synthetic parts dataset and inspect image datasets.",
    no_args_is_help=True,
)


def _count_table(dataset: Dataset) -> list[str]:
    """Rows of images per category and split, with totals."""
    counts = Counter((rec.label or "(none)", rec.split or "(none)") for rec in dataset.records)
    present = {label for label, _ in counts}
    labels = [c for c in dataset.categories if c in present]
    labels += sorted(present - set(labels))
    splits = [s for s in ("train", "test", "(none)") if any(sp == s for _, sp in counts)]
    width = max(len("category"), *(len(label) for label in labels))
    rows = ["  ".join([f"{'category':<{width}}", *(f"{s:>6}" for s in splits), f"{'total':>6}"])]
    for label in [*labels, None]:  # None: the totals row
        cells = [
            sum(n for (lab, sp), n in counts.items() if sp == split and label in (None, lab))
            for split in splits
        ]
        name = "total" if label is None else label
        rows.append(
            "  ".join([f"{name:<{width}}", *(f"{c:>6}" for c in cells), f"{sum(cells):>6}"])
        )
    return rows


@dataset_app.command("synth")
def synth(
    ctx: typer.Context,
    out: Path = typer.Argument(
        ..., help="Folder to write the PNG files and annotations.json into."
    ),
    n: int = typer.Option(400, "--n", help="Number of images (categories take turns)."),
    size: int = typer.Option(128, "--size", help="Image side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same bytes."),
    test_fraction: float = typer.Option(
        0.25, "--test-fraction", help="Share of each category put in the test split."
    ),
    difficulty: str = typer.Option(
        "normal",
        "--difficulty",
        help="normal, or hard: more rotation, smaller objects, loose boxes with random margins "
        "and occluders, so a part's place in the crop is not given by the facing alone.",
    ),
    style: str = typer.Option(
        "cartoon",
        "--style",
        help="The look: cartoon (the default, unchanged by this option) or lowpoly (faceted "
        "animals in other proportions, textures, backgrounds and poses; same parts and "
        "annotation format, kept for evaluation).",
    ),
) -> None:
    """Render the synthetic parts dataset (objects with exact part keypoints and boxes)."""
    from miner.data.synthetic import write_synthetic
    from miner.data.synthetic.writer import ANNOTATION_FILE

    dataset = write_synthetic(
        out,
        n,
        size=size,
        seed=seed,
        test_fraction=test_fraction,
        progress=state(ctx).progress,
        difficulty=difficulty,
        style=style,
    )
    look = "" if style == "cartoon" else f", {style} look"
    typer.echo(f"wrote {len(dataset)} images of {size}x{size} px (seed {seed}{look}) to {out}")
    for row in _count_table(dataset):
        typer.echo(row)
    typer.echo(f"annotations: {out / ANNOTATION_FILE}")


@dataset_app.command("info")
def info(
    path: Path = typer.Argument(..., help="Image folder, CUB-200-2011 root or annotation file."),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Annotation file for a plain image folder."
    ),
) -> None:
    """Count the images of a dataset per category and split, and list its parts."""
    from miner.data.folder import load_dataset
    from miner.data.images import box_too_small

    dataset = load_dataset(path, annotations)
    typer.echo(f"dataset {dataset.name}: {len(dataset)} images under {dataset.root}")
    categories = ", ".join(dataset.categories) if dataset.categories else "(none)"
    typer.echo(f"categories ({len(dataset.categories)}): {categories}")
    for row in _count_table(dataset):
        typer.echo(row)
    boxed = [rec.box for rec in dataset.records if rec.box is not None]
    small = sum(box_too_small(box) for box in boxed)
    typer.echo(f"boxes: {len(boxed)} of {len(dataset)} images ({small} smaller than 50 px)")
    visible = Counter(name for rec in dataset.records for name in rec.visible_parts())
    if dataset.part_names:
        listed = ", ".join(f"{name} ({visible[name]})" for name in dataset.part_names)
        typer.echo(f"parts, with visible counts: {listed}")
    else:
        typer.echo("parts: none annotated")


def register(app: typer.Typer) -> None:
    """Add the ``dataset`` command group to the root app."""
    app.add_typer(dataset_app, name="dataset")


__all__ = ["dataset_app", "register"]
