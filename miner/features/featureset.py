"""Read access to extracted feature maps: normalised chunks of images, never the whole array.

A :class:`FeatureSet` is a view of one finished cache entry (see :mod:`miner.features.cache`).
The maps are stored as ReLU'd raw responses ``max(x, 0)`` in float16; the per-unit std ``s``
lives beside them and is applied when a chunk is read, so one forward pass serves both the
statistics and the maps (docs/method.md §2: ``m = max(x, 0) / s``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from explgraph.core.errors import InputError
from miner.data.records import ImageRecord, Keypoint
from miner.models.spec import LayerGeometry

META_FILE = "meta.json"
FORMAT_VERSION = 1
MAP_DTYPE = np.float16


class SkippedImage(NamedTuple):
    """An input image that was left out, and why (unreadable file, box too small)."""

    path: Path
    reason: str


def map_file(index: int, *, flipped: bool = False) -> str:
    """File name of layer ``index``'s maps (of the mirrored images when ``flipped``)."""
    return f"layer{index:02d}.mirror.f16" if flipped else f"layer{index:02d}.f16"


def std_file(index: int) -> str:
    """File name of layer ``index``'s per-unit std (float32, already floored)."""
    return f"layer{index:02d}.std.npy"


def record_to_json(record: ImageRecord) -> dict[str, Any]:
    """The JSON form of a record kept in the cache's metadata."""
    return {
        "path": str(record.path),
        "box": list(record.box) if record.box is not None else None,
        "label": record.label,
        "split": record.split,
        "parts": {name: [kp.x, kp.y, kp.visible] for name, kp in record.parts.items()},
    }


def record_from_json(data: Mapping[str, Any]) -> ImageRecord:
    """Inverse of :func:`record_to_json`."""
    box = data.get("box")
    return ImageRecord(
        path=Path(data["path"]),
        box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box else None,
        parts={
            name: Keypoint(float(x), float(y), bool(visible))
            for name, (x, y, visible) in data.get("parts", {}).items()
        },
        label=data.get("label"),
        split=data.get("split"),
    )


class FeatureSet:
    """Normalised feature maps of a set of images, read from the on-disk cache in chunks.

    Images are in the order of :attr:`records` (the input records that were kept). Reading a
    chunk costs memory for that chunk only, so peak memory does not grow with the number of
    images.

    Example::

        fs = extract_features(model, records, ["features.8"], cache_dir=Path("cache"))
        for start in range(0, fs.num_images, 64):
            mass = fs.chunk("features.8", start, min(start + 64, fs.num_images))
    """

    def __init__(
        self,
        directory: Path,
        meta: Mapping[str, Any],
        records: Sequence[ImageRecord] | None = None,
    ) -> None:
        """Wrap the finished cache entry in ``directory`` described by ``meta``.

        ``records`` are the caller's records for the kept images (same order); when ``None``
        they are rebuilt from the metadata.
        """
        self.directory = Path(directory)
        self.meta: Mapping[str, Any] = meta
        self.key: str = str(meta["key"])
        self.layers: list[LayerGeometry] = [LayerGeometry(**layer) for layer in meta["layers"]]
        self.num_images: int = int(meta["num_images"])
        self.mirrored: bool = bool(meta["mirrored"])
        self.normalisation: str = str(meta["normalisation"])
        self.image_ids: list[str] = [str(image["id"]) for image in meta["images"]]
        if records is None:
            records = [record_from_json(image["record"]) for image in meta["images"]]
        self.records: list[ImageRecord] = list(records)
        self.skipped: list[SkippedImage] = [
            SkippedImage(Path(item["path"]), str(item["reason"])) for item in meta["skipped"]
        ]
        self.background_skipped: list[SkippedImage] = [
            SkippedImage(Path(item["path"]), str(item["reason"]))
            for item in meta["background"]["skipped"]
        ]
        if len(self.records) != self.num_images or len(self.image_ids) != self.num_images:
            raise InputError(
                f"feature cache {self.directory} lists {len(self.image_ids)} images but holds "
                f"{self.num_images}; delete that folder and extract again"
            )
        self._std: dict[int, np.ndarray] = {}
        self._inv_std: dict[tuple[int, str], torch.Tensor] = {}

    @classmethod
    def open(cls, directory: Path) -> FeatureSet:
        """Open a finished cache entry folder on its own (records rebuilt from its metadata)."""
        meta_path = Path(directory) / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise InputError(
                f"{directory} is not a finished feature cache ({error}); extract the features again"
            ) from error
        if not meta.get("complete") or meta.get("format") != FORMAT_VERSION:
            raise InputError(
                f"{directory} is an unfinished or outdated feature cache; "
                "extract the features again"
            )
        return cls(Path(directory), meta)

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        names = ", ".join(layer.name for layer in self.layers)
        return (
            f"FeatureSet({self.num_images} images, layers [{names}], "
            f"normalisation={self.normalisation!r}, mirrored={self.mirrored}, key={self.key!r})"
        )

    def layer(self, layer: str | int) -> LayerGeometry:
        """The geometry of a layer given by name or by index into :attr:`layers`."""
        return self.layers[self._index(layer)]

    def std(self, layer: str | int) -> np.ndarray:
        """Per-unit std ``s`` of the raw response, ``float32 [C, H, W]``, floored away from 0."""
        index = self._index(layer)
        if index not in self._std:
            self._std[index] = np.load(self.directory / std_file(index))
        return self._std[index]

    def raw_maps(self, layer: str | int, *, flipped: bool = False) -> np.memmap:
        """The stored ``max(x, 0)`` maps of a layer, read-only ``float16 [N, C, H, W]`` memmap.

        ``flipped`` gives the maps of the mirrored images (in the mirrored image's own
        coordinates). Prefer :meth:`chunk`: pages touched through a memmap stay mapped.
        """
        index = self._index(layer)
        geometry = self.layers[index]
        self._check_flipped(flipped)
        return np.memmap(
            self.directory / map_file(index, flipped=flipped),
            dtype=MAP_DTYPE,
            mode="r",
            shape=(self.num_images, geometry.channels, geometry.height, geometry.width),
        )

    def chunk(
        self,
        layer: str | int,
        start: int,
        stop: int,
        *,
        flipped: bool = False,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """The entity mass ``m = max(x, 0) / s`` of images ``start:stop``, ``float32 [n, C, H, W]``.

        ``flipped`` reads the maps of the mirrored images (same order; each map is in its
        mirrored image's coordinates). The file is read with plain reads, not mapped, so
        memory holds only this chunk.
        """
        index = self._index(layer)
        self._check_flipped(flipped)
        if not 0 <= start <= stop <= self.num_images:
            raise IndexError(f"chunk {start}:{stop} is outside 0:{self.num_images}")
        geometry = self.layers[index]
        per_image = geometry.channels * geometry.height * geometry.width
        count = (stop - start) * per_image
        data = np.fromfile(
            self.directory / map_file(index, flipped=flipped),
            dtype=MAP_DTYPE,
            count=count,
            offset=start * per_image * np.dtype(MAP_DTYPE).itemsize,
        )
        if data.size != count:
            raise InputError(
                f"feature cache file {map_file(index, flipped=flipped)} in {self.directory} is "
                "truncated; delete that folder and extract again"
            )
        maps = (
            torch.from_numpy(data)
            .to(device)
            .reshape(stop - start, geometry.channels, geometry.height, geometry.width)
        )
        return maps.float().mul_(self._inverse_std(index, torch.device(device)))

    def _inverse_std(self, index: int, device: torch.device) -> torch.Tensor:
        cache_key = (index, str(device))
        if cache_key not in self._inv_std:
            self._inv_std[cache_key] = torch.from_numpy(1.0 / self.std(index)).to(device)
        return self._inv_std[cache_key]

    def _check_flipped(self, flipped: bool) -> None:
        if flipped and not self.mirrored:
            raise InputError(
                "these features were extracted without mirrored images; extract with mirror=True"
            )

    def _index(self, layer: str | int) -> int:
        if isinstance(layer, int):
            if not 0 <= layer < len(self.layers):
                raise IndexError(f"layer index {layer} is outside 0:{len(self.layers)}")
            return layer
        node = self.meta.get("aliases", {}).get(layer, layer)
        for index, geometry in enumerate(self.layers):
            if geometry.name == node:
                return index
        names = ", ".join(geometry.name for geometry in self.layers)
        raise InputError(f"layer {layer!r} is not in these features; they hold: {names}")


__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "FeatureSet",
    "SkippedImage",
    "map_file",
    "record_from_json",
    "record_to_json",
    "std_file",
]
