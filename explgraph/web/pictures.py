"""Pixels for the pages: stored images by id, and receptive-field patches around firings.

Images are found only through the store: the request names an ``Image.image_id`` and the path
comes from that node, so no request can name a file. Every picture is decoded and re-encoded
as PNG, never streamed from disk as it is.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from explgraph.core.errors import ImageError, InputError, StoreError
from graphstore import GraphStore, model_params
from miner.data.records import Box

#: side of a patch tile on the pattern page, pixels
PATCH_TILE = 96
#: longest side of an image sent to the browser
MAX_SIDE = 1024
_DECODED = 64  # decoded images kept in memory


class Pictures:
    """Decodes stored images (a small LRU cache) and cuts patches; shared by request threads."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._boxes: dict[str, dict[str, Box]] = {}
        self._lock = threading.Lock()

    def image(self, path: str) -> Image.Image:
        """The RGB image at a path read from the store (cached)."""
        from miner.data.images import load_image

        with self._lock:
            cached = self._images.get(path)
            if cached is not None:
                self._images.move_to_end(path)
                return cached
        picture = load_image(path)
        with self._lock:
            self._images[path] = picture
            while len(self._images) > _DECODED:
                self._images.popitem(last=False)
        return picture

    def training_boxes(self, model_id: str) -> dict[str, Box]:
        """Object boxes of a model's training images by resolved path (from its annotations)."""
        with self._lock:
            if model_id in self._boxes:
                return self._boxes[model_id]
        rows = self._store.query(
            "MATCH (m:Model {model_id: $id}) RETURN m.params AS params", {"id": model_id}
        )
        boxes: dict[str, Box] = {}
        params: dict[str, Any] = {}
        if rows:
            try:
                params = model_params(model_id, rows[0]["params"])
            except StoreError:  # not a JSON object: no annotations to read
                params = {}
        images, annotations = params.get("images"), params.get("annotations")
        if images and Path(images).exists():
            from miner.data.folder import load_dataset

            try:
                dataset = load_dataset(Path(images), Path(annotations) if annotations else None)
                boxes = {str(r.path.resolve()): r.box for r in dataset.records if r.box is not None}
            except InputError:
                boxes = {}
        with self._lock:
            self._boxes[model_id] = boxes
        return boxes

    def forget(self) -> None:
        """Drop the kept boxes and images (the store changed: a model may have been re-mined)."""
        with self._lock:
            self._boxes.clear()
            self._images.clear()

    def box_for(self, model_id: str, path: str) -> Box | None:
        """The object box the model's training annotations give for ``path``, if any."""
        return self.training_boxes(model_id).get(str(Path(path).resolve()))


def png_bytes(picture: Image.Image, max_side: int = MAX_SIDE) -> bytes:
    """``picture`` as PNG, shrunk so that its longest side is at most ``max_side``."""
    if max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def patch(
    picture: Image.Image,
    x: float,
    y: float,
    rf_size: float,
    input_size: float,
    box: Box | None,
    tile: int = PATCH_TILE,
) -> Image.Image:
    """The receptive field of a firing at ``(x, y)`` (image pixels), as a ``tile`` square.

    The receptive field is ``rf_size`` model-input pixels; the model saw the object box (or the
    whole image) resized to ``input_size``, so one input pixel spans ``box side / input_size``
    image pixels on each axis. Parts outside the image come out black.
    """
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, picture.width, picture.height)
    half_w = rf_size * (x1 - x0) / input_size / 2.0
    half_h = rf_size * (y1 - y0) / input_size / 2.0
    region = (int(x - half_w), int(y - half_h), int(x + half_w) + 1, int(y + half_h) + 1)
    return picture.crop(region).resize((tile, tile))


def decode_upload(data: bytes, *, max_pixels: int) -> Image.Image:
    """An uploaded file as an RGB image, refusing non-images and too many pixels.

    Raises:
        ImageError: not an image PIL can decode, or more than ``max_pixels`` pixels.
    """
    try:
        with Image.open(io.BytesIO(data)) as handle:
            width, height = handle.size
            if width * height > max_pixels:
                raise ImageError(
                    f"the image has {width}x{height} pixels, more than the limit of "
                    f"{max_pixels}: shrink it and upload again"
                )
            handle.load()
            return handle.convert("RGB")
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError(
            f"the upload is not an image that can be read ({type(error).__name__}): "
            "upload a PNG or JPEG file"
        ) from None


__all__ = ["MAX_SIDE", "PATCH_TILE", "Pictures", "decode_upload", "patch", "png_bytes"]
