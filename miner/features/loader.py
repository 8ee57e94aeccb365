"""Decode and crop images in background threads, so decoding overlaps the forward pass.

Batches come out in input order whatever the thread timing, so extraction is deterministic.
Images that cannot be used are reported in the batch, not raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from explgraph.core.errors import InputError
from miner.data.images import box_too_small, crop_to_box, full_box, load_image
from miner.data.records import ImageRecord

# Batches decoded ahead of the forward pass: enough to hide decode time, small enough that
# memory stays a few batches.
_PREFETCH = 2


@dataclass
class Batch:
    """One batch of crops: ``pixels`` uint8 ``[b, S, S, 3]`` for ``positions`` of the input."""

    pixels: torch.Tensor
    positions: list[int]  # indices into the input sequence of the images in ``pixels``
    skipped: list[tuple[int, str]]  # (index into the input, reason) of images left out
    size: int  # how many input images this batch covered (kept + skipped)


def _prepare(record: ImageRecord, size: int, min_box: float) -> np.ndarray | str:
    """The crop as uint8 ``[S, S, 3]``, or the reason the image cannot be used."""
    if box_too_small(record.box, min_box):
        return f"object box smaller than {min_box:g} px"
    try:
        image = load_image(record.path)
        if record.box is None and box_too_small(full_box(image), min_box):
            return f"image smaller than {min_box:g} px"
        crop = crop_to_box(image, record.box, size)
    except InputError as error:
        return str(error)
    return np.asarray(crop, dtype=np.uint8)


def _batch(results: list[np.ndarray | str], begin: int, size: int, pin_memory: bool) -> Batch:
    """The batch of ``results`` (crops, or reasons) of the input images from ``begin`` on."""
    crops = [r for r in results if not isinstance(r, str)]
    pixels = (
        torch.from_numpy(np.stack(crops))
        if crops
        else torch.empty((0, size, size, 3), dtype=torch.uint8)
    )
    return Batch(
        pixels=pixels.pin_memory() if pin_memory and crops else pixels,
        positions=[begin + i for i, r in enumerate(results) if not isinstance(r, str)],
        skipped=[(begin + i, r) for i, r in enumerate(results) if isinstance(r, str)],
        size=len(results),
    )


class _Handover:
    """The bounded queue between the decoding thread and the consumer, with a stop signal."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=_PREFETCH)
        self.stop = threading.Event()

    def put(self, item: Batch | BaseException | None) -> bool:
        """Hand ``item`` over; False when the consumer stopped first."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def _produce(
    records: Sequence[ImageRecord],
    handover: _Handover,
    *,
    size: int,
    batch_size: int,
    min_box: float,
    workers: int,
    pin_memory: bool,
) -> None:
    """Decode every batch in turn into ``handover``; then ``None``, or the error raised."""
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for begin in range(0, len(records), batch_size):
                chunk = records[begin : begin + batch_size]
                results = list(pool.map(lambda r: _prepare(r, size, min_box), chunk))
                if not handover.put(_batch(results, begin, size, pin_memory)):
                    return
        handover.put(None)
    except BaseException as error:  # handed to the consumer, which re-raises it
        handover.put(error)


def iter_batches(
    records: Sequence[ImageRecord],
    *,
    size: int,
    batch_size: int,
    min_box: float,
    workers: int = 2,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield the crops of ``records`` in order, ``batch_size`` input images at a time.

    Decoding runs in ``workers`` threads (PIL releases the GIL while decoding and resizing)
    and one batch ahead; if the consumer stops early the threads are told to stop.
    """
    handover = _Handover()
    settings = {"size": size, "batch_size": batch_size, "min_box": min_box}
    thread = threading.Thread(
        target=_produce,
        args=(records, handover),
        kwargs={**settings, "workers": workers, "pin_memory": pin_memory},
        name="explgraph-image-loader",
        daemon=True,
    )
    thread.start()
    try:
        while True:
            item = handover.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        handover.stop.set()
        thread.join()


__all__ = ["Batch", "iter_batches"]
