"""Image folders, annotated or not, and the one entry point that recognises any data source.

:func:`load_dataset` accepts, in this order of checks:

1. an annotation file (``*.json``, see :mod:`miner.data.annotations`);
2. a CUB-200-2011 root (or a folder holding ``CUB_200_2011/``), see :mod:`miner.data.cub`;
3. a folder with ``annotations.json`` inside (what ``explgraph dataset synth`` writes);
4. a plain folder of images: every image below it, sorted by path; images in a first-level
   sub-folder get that sub-folder's name as their label.

Images are not opened here: unreadable files are skipped and reported by feature extraction.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from explgraph.core.errors import InputError
from miner.data.annotations import is_inside, read_annotations
from miner.data.cub import is_cub_root, read_cub
from miner.data.records import Dataset, ImageRecord

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
ANNOTATION_FILE = "annotations.json"


def _image_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _refuse_links_outside(root: Path, files: list[Path]) -> None:
    """A symbolic link under ``root`` that leads outside it is refused like a ``..`` path."""
    base = os.path.realpath(root)
    for path in files:
        if not is_inside(base, path):
            raise InputError(
                f"{path} is a link to {os.path.realpath(path)}, outside the image root {base}; "
                "copy the image under it or pass --allow-outside-root"
            )


def load_image_folder(
    root: Path | str, annotations: Path | str | None = None, *, allow_outside_root: bool = False
) -> Dataset:
    """Every image under ``root`` (sorted), merged with an annotation file when one is given.

    Annotated entries take their box, parts, label and split from the file; other images get
    the name of their first-level sub-folder as label (none when they sit in ``root`` itself).
    Annotation paths are relative to ``root`` and must stay under it unless
    ``allow_outside_root``.

    Raises:
        InputError: ``root`` is not a folder, or holds no images.
        AnnotationError: the annotation file is malformed or names missing images.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder: give a folder of images or an annotation file")
    files = _image_files(root)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise InputError(f"no images ({suffixes}) under {root}: point at a folder of images")
    if not allow_outside_root:
        _refuse_links_outside(root, files)
    annotated: dict[Path, ImageRecord] = {}
    categories: tuple[str, ...] = ()
    if annotations is not None:
        known = read_annotations(
            annotations, image_root=root, allow_outside_root=allow_outside_root
        )
        annotated = {rec.path.resolve(): rec for rec in known.records}
        categories = known.categories
    records: list[ImageRecord] = []
    for path in files:
        rec = annotated.pop(path.resolve(), None)
        if rec is None:
            depth = path.relative_to(root).parts
            rec = ImageRecord(path=path, label=depth[0] if len(depth) > 1 else None)
        else:
            rec = replace(rec, path=path)
        records.append(rec)
    records.extend(annotated.values())  # annotated images with an unusual suffix or elsewhere
    records.sort(key=lambda rec: str(rec.path))
    labels = sorted({rec.label for rec in records if rec.label is not None} - set(categories))
    return Dataset(
        name=root.resolve().name,
        root=root,
        records=tuple(records),
        categories=(*categories, *labels),
    )


def load_dataset(
    path: Path | str, annotations: Path | str | None = None, *, allow_outside_root: bool = False
) -> Dataset:
    """Open any supported data source (see the module docstring for the order of checks).

    ``annotations`` names an annotation file for a plain folder, with paths relative to ``path``.
    Annotated image paths must stay under their image root unless ``allow_outside_root``.

    Example:
        >>> from miner.data.synthetic import write_synthetic
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> _ = write_synthetic(out, n=4, size=64)
        >>> len(load_dataset(out))
        4
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: give an image folder, a CUB root or a .json file")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise InputError(
                f"{path} is a file: give a folder of images or a .json annotation file"
            )
        return read_annotations(path, allow_outside_root=allow_outside_root)
    if annotations is not None:
        return load_image_folder(path, annotations, allow_outside_root=allow_outside_root)
    for root in (path, path / "CUB_200_2011"):
        if is_cub_root(root):
            return read_cub(root)
    if (path / ANNOTATION_FILE).is_file():
        return load_image_folder(
            path, path / ANNOTATION_FILE, allow_outside_root=allow_outside_root
        )
    return load_image_folder(path, allow_outside_root=allow_outside_root)


__all__ = ["IMAGE_SUFFIXES", "load_dataset", "load_image_folder"]
