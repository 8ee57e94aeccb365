"""The on-disk feature cache: one folder per key, written aside and renamed when complete.

Layout of an entry ``<cache_dir>/<key>/``::

    meta.json            what was extracted (model, layers, images, skipped, normalisation)
    layer00.f16          max(x, 0) of layer 0, raw float16 [N, C, H, W], C order
    layer00.mirror.f16   the same for the mirrored images (only when mirrored)
    layer00.std.npy      per-unit std of the raw response, float32 [C, H, W], floored

An entry is built in ``<cache_dir>/.tmp-<key>-<pid>/`` and renamed to ``<key>`` only after every
file is written, so a killed run never leaves a folder that looks finished. Map files are
written with appends, not through a memmap, so writing does not pin pages in this process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from explgraph.core.errors import InputError
from explgraph.core.faults import fault_point
from miner.data.records import ImageRecord
from miner.features.featureset import (
    FORMAT_VERSION,
    MAP_DTYPE,
    META_FILE,
    FeatureSet,
    map_file,
    std_file,
)
from miner.models.spec import LayerGeometry

log = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"


def cache_key(parts: Mapping[str, Any]) -> str:
    """A short stable hash of everything that determines the cached maps."""
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def find_entry(cache_dir: Path, key: str) -> Path | None:
    """The finished entry for ``key``, or ``None`` (missing, unfinished or damaged)."""
    entry = Path(cache_dir) / key
    try:
        meta = json.loads((entry / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not meta.get("complete") or meta.get("format") != FORMAT_VERSION or meta["key"] != key:
        return None
    item = np.dtype(MAP_DTYPE).itemsize
    for index, layer in enumerate(meta["layers"]):
        expected = meta["num_images"] * layer["channels"] * layer["height"] * layer["width"] * item
        flips = (False, True) if meta["mirrored"] else (False,)
        for flipped in flips:
            path = entry / map_file(index, flipped=flipped)
            if not path.is_file() or path.stat().st_size != expected:
                return None
        if not (entry / std_file(index)).is_file():
            return None
    return entry


def remove_stale_temporaries(cache_dir: Path) -> None:
    """Delete temporary folders left by runs that were killed (their process is gone)."""
    if not Path(cache_dir).is_dir():
        return
    for path in Path(cache_dir).glob(_TMP_PREFIX + "*"):
        pid_text = path.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            log.info("removing %s, left by a killed run", path)
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class CacheWriter:
    """Streams one entry's maps to a temporary folder; :meth:`commit` makes it visible.

    Use as a context manager: leaving the block without :meth:`commit` (an error, a
    KeyboardInterrupt) deletes the temporary folder.
    """

    def __init__(
        self, cache_dir: Path, key: str, layers: Sequence[LayerGeometry], mirrored: bool
    ) -> None:
        """Prepare ``<cache_dir>/.tmp-<key>-<pid>`` for ``layers`` (and their mirrors)."""
        self.cache_dir = Path(cache_dir)
        self.key = key
        self.layers = list(layers)
        self.mirrored = mirrored
        self.tmp_dir = self.cache_dir / f"{_TMP_PREFIX}{key}-{os.getpid()}"
        self._files: dict[tuple[int, bool], BinaryIO] = {}
        self._committed: Path | None = None

    def __enter__(self) -> CacheWriter:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir.mkdir()
            for index in range(len(self.layers)):
                for flipped in (False, True) if self.mirrored else (False,):
                    self._files[index, flipped] = open(  # closed in _close
                        self.tmp_dir / map_file(index, flipped=flipped), "wb"
                    )
        except OSError as error:
            self._close()
            raise InputError(
                f"cannot write the feature cache in {self.cache_dir} ({error}); "
                "pick a writable folder with --cache-dir or EXPLGRAPH_CACHE"
            ) from error
        return self

    def append(self, index: int, maps: np.ndarray, *, flipped: bool = False) -> None:
        """Append a batch of maps ``[b, C, H, W]`` (converted to float16) to layer ``index``."""
        data = np.ascontiguousarray(maps, dtype=MAP_DTYPE)
        self._files[index, flipped].write(data.data)  # no copy: data is C-contiguous

    def commit(self, meta: Mapping[str, Any], stds: Sequence[np.ndarray]) -> Path:
        """Write the stds and metadata, then rename the folder to its key; return its path."""
        for index, std in enumerate(stds):
            np.save(self.tmp_dir / std_file(index), np.asarray(std, dtype=np.float32))
        self._close()
        (self.tmp_dir / META_FILE).write_text(
            json.dumps({**meta, "key": self.key, "format": FORMAT_VERSION, "complete": True})
        )
        final = self.cache_dir / self.key
        if final.exists() and find_entry(self.cache_dir, self.key) is None:
            shutil.rmtree(final)  # a damaged entry (e.g. a file deleted by hand)
        fault_point("features.commit")
        try:
            os.replace(self.tmp_dir, final)
        except OSError:
            # Another run finished the same key first: its entry holds the same data.
            if find_entry(self.cache_dir, self.key) is None:
                raise
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self._committed = final
        return final

    def _close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()
        if self._committed is None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)


def open_entry(entry: Path, records: Sequence[ImageRecord] | None = None) -> FeatureSet:
    """A :class:`FeatureSet` over a finished entry (``records``: the caller's kept records)."""
    meta = json.loads((Path(entry) / META_FILE).read_text())
    return FeatureSet(Path(entry), meta, records)


__all__ = ["CacheWriter", "cache_key", "find_entry", "open_entry", "remove_stale_temporaries"]
