"""The feature cache: a second run reuses it without a forward pass; any key change misses;
a killed run never leaves an entry that looks finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from miner.data.records import ImageRecord
from miner.features import FeatureSet, extract_features
from miner.features.cache import find_entry, remove_stale_temporaries
from miner.models.spec import LoadedModel


class Counted:
    """A tiny conv net and a count of the forward passes its first conv ran."""

    def __init__(self, fingerprint: str = "f0") -> None:
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3))
        self.calls = 0
        self.net[0].register_forward_hook(self._count)
        self.model = LoadedModel(
            module=self.net,
            name="tiny",
            source="test",
            weights=None,
            fingerprint=fingerprint,
            input_size=24,
        )

    def _count(self, *_: object) -> None:
        self.calls += 1


def write_images(folder: Path, count: int, seed: int) -> list[ImageRecord]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(path=path, box=(1.0, 2.0, 39.0, 38.0)))
    return records


@pytest.fixture
def images(tmp_path: Path) -> list[ImageRecord]:
    return write_images(tmp_path / "img", 4, seed=0)


def run(counted: Counted, records: list[ImageRecord], cache: Path, **kwargs: object) -> FeatureSet:
    options: dict[str, object] = {"layers": ["2"], "min_box": 8, "batch_size": 3, **kwargs}
    layers = options.pop("layers")
    return extract_features(
        counted.model,
        records,
        layers,  # type: ignore[arg-type]
        cache_dir=cache,
        **options,  # type: ignore[arg-type]
    )


def test_second_run_reuses_the_cache_without_a_forward_pass(
    tmp_path: Path, images: list[ImageRecord]
) -> None:
    counted = Counted()
    first = run(counted, images, tmp_path / "cache")
    calls = counted.calls
    assert calls > 0
    # Fresh record objects for the same files: the key is the content, not the objects.
    again = [ImageRecord(path=Path(str(r.path)), box=r.box) for r in images]
    second = run(counted, again, tmp_path / "cache")
    assert counted.calls == calls
    assert second.key == first.key and second.records == again
    torch.testing.assert_close(second.chunk("2", 0, 4), first.chunk("2", 0, 4))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.key]


def test_moved_image_files_hit_the_cache_and_report_their_new_paths(
    tmp_path: Path, images: list[ImageRecord]
) -> None:
    counted = Counted()
    broken = tmp_path / "img" / "broken.png"
    broken.write_bytes(b"not an image")
    first = run(counted, [*images, ImageRecord(path=broken)], tmp_path / "cache")
    moved = tmp_path / "moved"
    (tmp_path / "img").rename(moved)
    records = [ImageRecord(path=moved / r.path.name, box=r.box) for r in images]
    calls = counted.calls
    second = run(counted, [*records, ImageRecord(path=moved / "broken.png")], tmp_path / "cache")
    assert counted.calls == calls and second.key == first.key
    assert second.records == records
    assert [s.path for s in second.skipped] == [moved / "broken.png"]


Change = Callable[[Counted, list[ImageRecord], Path], tuple[Counted, list[ImageRecord], dict]]


def _new_bytes(c: Counted, recs: list[ImageRecord], tmp: Path) -> tuple[Counted, list, dict]:
    Image.new("RGB", (40, 40), (9, 9, 9)).save(recs[0].path)
    return c, recs, {}


CHANGES: dict[str, Change] = {
    "weights": lambda c, recs, tmp: (Counted("f1"), recs, {}),
    "layers": lambda c, recs, tmp: (c, recs, {"layers": ["0", "2"]}),
    "mirror": lambda c, recs, tmp: (c, recs, {"mirror": True}),
    "box": lambda c, recs, tmp: (
        c,
        [ImageRecord(path=recs[0].path, box=(0.0, 0.0, 30.0, 30.0)), *recs[1:]],
        {},
    ),
    "image set": lambda c, recs, tmp: (c, recs[:3], {}),
    "image bytes": _new_bytes,
    "min box": lambda c, recs, tmp: (c, recs, {"min_box": 9}),
    "background": lambda c, recs, tmp: (c, recs, {"background": write_images(tmp / "bg", 2, 5)}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_key_change_makes_a_new_entry(
    tmp_path: Path, images: list[ImageRecord], change: str
) -> None:
    counted = Counted()
    first = run(counted, images, tmp_path / "cache")
    counted2, records, options = CHANGES[change](counted, images, tmp_path)
    before = counted2.calls
    second = run(counted2, records, tmp_path / "cache", **options)
    assert second.key != first.key
    assert counted2.calls > before  # it really ran the model again
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {first.key, second.key}


def test_input_size_and_normalisation_are_part_of_the_key(
    tmp_path: Path, images: list[ImageRecord]
) -> None:
    counted = Counted()
    first = run(counted, images, tmp_path / "cache")
    counted.model.mean = (0.1, 0.2, 0.3)
    second = run(counted, images, tmp_path / "cache")
    counted.model.input_size = 28
    third = run(counted, images, tmp_path / "cache")
    assert len({first.key, second.key, third.key}) == 3
    assert third.layers[0].height == 26  # 28 input, then a 3x3 conv without padding


def test_unfinished_or_damaged_entries_are_not_reused(
    tmp_path: Path, images: list[ImageRecord]
) -> None:
    counted = Counted()
    cache = tmp_path / "cache"
    first = run(counted, images, cache)
    entry = cache / first.key
    maps = next(entry.glob("*.f16"))
    maps.write_bytes(maps.read_bytes()[:-2])  # truncated map file
    assert find_entry(cache, first.key) is None
    calls = counted.calls
    rebuilt = run(counted, images, cache)
    assert counted.calls > calls and find_entry(cache, first.key) == entry
    torch.testing.assert_close(rebuilt.chunk(0, 0, 4), first.chunk(0, 0, 4))

    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    assert find_entry(cache, first.key) is None


def test_killed_run_leaves_no_entry_and_its_leftovers_are_cleared(
    tmp_path: Path, images: list[ImageRecord]
) -> None:
    cache = tmp_path / "cache"
    # A child process starts a cache write and is killed before it finishes.
    script = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from miner.features.cache import CacheWriter\n"
        "from miner.models.spec import LayerGeometry\n"
        "g = LayerGeometry('x', 0, 2, 3, 3, 1.0, 1.0, 0.0)\n"
        "w = CacheWriter(Path(sys.argv[1]), 'k' * 24, [g], False).__enter__()\n"
        "w.append(0, __import__('numpy').ones((1, 2, 3, 3)))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", script, str(cache)], check=False)
    assert child.returncode != 0
    leftovers = [p.name for p in cache.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")
    assert find_entry(cache, "k" * 24) is None
    remove_stale_temporaries(cache)
    assert list(cache.iterdir()) == []


def test_a_live_writer_keeps_its_temporary_folder(tmp_path: Path) -> None:
    live = tmp_path / f".tmp-{'a' * 24}-{os.getpid()}"
    live.mkdir()
    remove_stale_temporaries(tmp_path)
    assert live.is_dir()


def test_run_failing_midway_leaves_nothing_behind(
    tmp_path: Path, images: list[ImageRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    from miner.features.extract import _Runner

    real = _Runner.__call__
    batches: list[int] = []

    def fail_on_second(self: _Runner, *args: Any) -> list[torch.Tensor]:
        batches.append(1)
        if len(batches) == 2:
            raise RuntimeError("interrupted")
        return real(self, *args)

    monkeypatch.setattr(_Runner, "__call__", fail_on_second)
    with pytest.raises(RuntimeError, match="interrupted"):
        run(Counted(), images, tmp_path / "cache")
    assert len(batches) == 2  # the first batch was written before the failure
    assert list((tmp_path / "cache").iterdir()) == []


def test_feature_set_opens_from_its_folder_alone(tmp_path: Path, images: list[ImageRecord]) -> None:
    first = run(Counted(), images, tmp_path / "cache", mirror=True)
    reopened = FeatureSet.open(first.directory)
    assert reopened.records == first.records and reopened.image_ids == first.image_ids
    assert reopened.mirrored and reopened.layers == first.layers
    torch.testing.assert_close(
        reopened.chunk("2", 1, 3, flipped=True), first.chunk("2", 1, 3, flipped=True)
    )
