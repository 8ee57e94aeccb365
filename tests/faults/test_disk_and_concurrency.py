"""Disk full (a small tmpfs), two writers at once, and a reader loop during a write.

Disk full needs ``mount -t tmpfs``, i.e. root (or CAP_SYS_ADMIN); elsewhere those tests skip
with the reason, and fail when the environment variable CI is set, so CI cannot go green
without running them.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from explgraph.core.errors import ExplGraphError
from tests.faults.runner import ROOT, child_env, explgraph, one_line_error, run_child
from tests.faults.storecheck import assert_sound, expected_counts, models, tiny_model
from tests.helpers.ci import missing_tool
from tests.helpers.stores import open_store

MODEL = "m"


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` for the duration (skips without root)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        missing_tool(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    """Take every free byte of the file system that holds ``folder``."""
    # unbuffered, so that closing has nothing left to flush onto the full disk
    with open(folder / f"filler-{uuid.uuid4().hex}", "wb", buffering=0) as handle:
        block = b"\0" * (1 << 16)
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)


@pytest.mark.slow
def test_delete_on_a_full_disk_is_one_line_and_leaves_the_model(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        spec = str(disk / "store")
        assert run_child("write", spec, MODEL, "0").returncode == 0
        _fill(disk)
        done = explgraph("--store", spec, "delete", MODEL)
        assert done.returncode == 1, (done.returncode, done.stderr[-500:])  # not 134 (abort)
        one_line_error(done)
        for filler in disk.glob("filler-*"):
            filler.unlink()
        assert_sound(spec, {MODEL: expected_counts(tiny_model(MODEL))})


@pytest.mark.slow
def test_write_on_a_full_disk_is_one_line_and_the_store_stays_readable(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        spec = str(disk / "store")
        assert run_child("write", spec, "first", "0").returncode == 0
        _fill(disk)
        done = run_child("write", spec, MODEL, "1")
        assert done.returncode != -6 and done.returncode != 134, done.stderr[-500:]
        for filler in disk.glob("filler-*"):
            filler.unlink()
        listed = models(spec)
        assert listed["first"]["status"] == "complete"
        assert MODEL not in listed or listed[MODEL]["status"] != "complete"


@pytest.mark.slow
def test_feature_cache_on_a_full_disk_is_refused_in_one_line(tmp_path: Path) -> None:
    from miner.data.synthetic import write_synthetic
    from miner.models.toy import bundled_checkpoint

    write_synthetic(tmp_path / "data", 16, size=128, seed=0)
    with tmpfs(tmp_path / "disk", "1m") as disk:
        done = explgraph(
            "--store", str(tmp_path / "store"), "mine", str(bundled_checkpoint()),
            "--images", str(tmp_path / "data"), "--split", "", "--iterations", "1",
            "--device", "cpu", "--cache-dir", str(disk / "cache"),
        )  # fmt: skip
        assert done.returncode == 1, done.stderr[-800:]
        line = one_line_error(done)
        assert "cache" in line and "free" in line


@pytest.mark.slow
def test_two_writers_at_once_leave_both_models_complete(store_spec: str) -> None:
    writers = {
        model_id: subprocess.Popen(
            [sys.executable, "-m", "tests.faults.child", "write", store_spec, model_id, str(seed)],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model_id, seed in (("a", 0), ("b", 1))
    }
    for model_id, child in writers.items():
        _, err = child.communicate(timeout=600)
        # a writer that found the store locked must say so cleanly, never crash or corrupt
        assert child.returncode == 0 or "StoreUnavailable" in err, err[-600:]
        if child.returncode != 0:
            seed = "0" if model_id == "a" else "1"
            assert run_child("write", store_spec, model_id, seed).returncode == 0
    assert_sound(
        store_spec,
        {
            "a": expected_counts(tiny_model("a", seed=0)),
            "b": expected_counts(tiny_model("b", seed=1)),
        },
    )


@pytest.mark.slow
def test_readers_during_a_write_see_a_store_or_one_clear_line(store_spec: str) -> None:
    with open_store(store_spec) as store:
        store.write_model(tiny_model(MODEL, seed=0))
    problems: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_loop() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                with open_store(store_spec, read_only=True) as store:
                    store.list_models()
                reads += 1
            except ExplGraphError as error:
                text = str(error)
                if "--write" in text or "corrupt" in text.lower() or "\n" in text:
                    problems.append(text)
            except Exception as error:  # anything else is a defect
                problems.append(f"{type(error).__name__}: {error}")
            time.sleep(0.01)

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        for seed in (1, 0, 1):  # three replacements while the reader loops
            done = run_child("write", store_spec, MODEL, str(seed))
            assert done.returncode == 0 or "StoreUnavailable" in done.stderr, done.stderr[-600:]
    finally:
        stop.set()
        reader.join(timeout=60)
    assert reads > 0
    assert not problems, problems[:5]
    assert_sound(store_spec)
