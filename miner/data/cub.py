"""Reader for the CUB-200-2011 folder layout (Wah et al., 2011).

Expected under the root (the ``CUB_200_2011`` folder of the official archive)::

    images.txt               <image_id> <relative path under images/>      required
    images/                  the image files                              required
    classes.txt              <class_id> <class_name>                      optional
    image_class_labels.txt   <image_id> <class_id>                        optional
    bounding_boxes.txt       <image_id> <x> <y> <width> <height>          optional
    train_test_split.txt     <image_id> <1 = train, 0 = test>             optional
    parts/parts.txt          <part_id> <part name, may contain spaces>    optional
    parts/part_locs.txt      <image_id> <part_id> <x> <y> <visible 0/1>   optional

Class names lose their numeric prefix (``001.Black_footed_Albatross`` -> ``Black_footed_Albatross``)
and part names get underscores (``left eye`` -> ``left_eye``). Coordinates are kept as the
files give them (image pixels). Hidden parts are kept with ``visible=False``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from explgraph.core.errors import AnnotationError, InputError
from miner.data.records import Box, Dataset, ImageRecord, Keypoint

CUB_NAME = "CUB-200-2011"


def is_cub_root(path: Path | str) -> bool:
    """Whether ``path`` looks like a CUB-200-2011 root (``images.txt`` and ``images/``)."""
    root = Path(path)
    return (root / "images.txt").is_file() and (root / "images").is_dir()


def _rows(path: Path, fields: int, layout: str, rest_is_text: bool = False) -> Iterator[list[str]]:
    """The whitespace-separated rows of a CUB list file, each checked for its field count."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationError(f"cannot read {path}: {error}; check the CUB folder") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1) if rest_is_text else line.split()
        if len(parts) != fields:
            raise AnnotationError(
                f"{path}: line {number}: expected '{layout}', got {line.strip()!r}; "
                "fix or remove that line"
            )
        yield parts


def _numbers(path: Path, row: list[str], layout: str) -> list[float]:
    try:
        return [float(v) for v in row]
    except ValueError as error:
        raise AnnotationError(
            f"{path}: row {' '.join(row)!r} does not match '{layout}': {error}; fix that line"
        ) from error


def _labels(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Class names by class id (numeric prefix dropped) and each image's class name."""
    classes: dict[str, str] = {}
    if (root / "classes.txt").is_file():
        for cid, cname in _rows(root / "classes.txt", 2, "<class_id> <name>", rest_is_text=True):
            classes[cid] = cname.split(".", 1)[1] if "." in cname else cname
    labels: dict[str, str] = {}
    if (root / "image_class_labels.txt").is_file():
        for image_id, cid in _rows(root / "image_class_labels.txt", 2, "<image_id> <class_id>"):
            labels[image_id] = classes.get(cid, cid)
    return classes, labels


def _boxes(root: Path) -> dict[str, Box]:
    """Each image's box as ``(x0, y0, x1, y1)``."""
    boxes: dict[str, Box] = {}
    box_file = root / "bounding_boxes.txt"
    if box_file.is_file():
        box_layout = "<image_id> <x> <y> <width> <height>"
        for image_id, *rest in _rows(box_file, 5, box_layout):
            x, y, w, h = _numbers(box_file, rest, box_layout)
            boxes[image_id] = (x, y, x + w, y + h)
    return boxes


def _splits(root: Path) -> dict[str, str]:
    splits: dict[str, str] = {}
    split_file = root / "train_test_split.txt"
    if split_file.is_file():
        for image_id, flag in _rows(split_file, 2, "<image_id> <is_training 0/1>"):
            splits[image_id] = "train" if flag == "1" else "test"
    return splits


def _parts(root: Path) -> dict[str, dict[str, Keypoint]]:
    """Each image's keypoints by part name (underscores for spaces)."""
    parts: dict[str, dict[str, Keypoint]] = {}
    part_file = root / "parts" / "part_locs.txt"
    if part_file.is_file() and (root / "parts" / "parts.txt").is_file():
        part_names = {
            pid: pname.strip().replace(" ", "_")
            for pid, pname in _rows(root / "parts" / "parts.txt", 2, "<part_id> <name>", True)
        }
        part_layout = "<image_id> <part_id> <x> <y> <visible>"
        for image_id, pid, *rest in _rows(part_file, 5, part_layout):
            x, y, visible = _numbers(part_file, rest, part_layout)
            name = part_names.get(pid, f"part_{pid}")
            parts.setdefault(image_id, {})[name] = Keypoint(x, y, visible > 0)
    return parts


def read_cub(root: Path | str) -> Dataset:
    """Read a CUB-200-2011 root into a :class:`Dataset` (labels, boxes, parts, split).

    Raises:
        InputError: ``root`` is not a CUB root.
        AnnotationError: a list file has a malformed line (the file and line are named).
    """
    root = Path(root)
    if not is_cub_root(root):
        raise InputError(
            f"{root} is not a CUB-200-2011 folder (no images.txt and images/): point at the "
            "CUB_200_2011 folder of the archive"
        )
    layout = "<image_id> <path>"
    names = {row[0]: row[1] for row in _rows(root / "images.txt", 2, layout, rest_is_text=True)}
    classes, labels = _labels(root)
    boxes, splits, parts = _boxes(root), _splits(root), _parts(root)
    records = tuple(
        ImageRecord(
            path=root / "images" / rel,
            box=boxes.get(image_id),
            parts=parts.get(image_id, {}),
            label=labels.get(image_id),
            split=splits.get(image_id),
        )
        for image_id, rel in names.items()
    )
    categories = tuple(classes.values()) or tuple(sorted(set(labels.values())))
    return Dataset(name=CUB_NAME, root=root, records=records, categories=categories)


__all__ = ["CUB_NAME", "is_cub_root", "read_cub"]
