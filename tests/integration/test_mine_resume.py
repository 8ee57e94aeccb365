"""An ``explgraph mine`` killed during learning resumes from its last finished layer.

The child is killed (SIGKILL: no clean-up code runs) as soon as the top layer's checkpoint exists
under the cache's ``graphs/`` folder. The re-run must finish, load that layer instead of learning
it again, and leave exactly one complete copy of the model in the store — the same graph an
uninterrupted run writes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import miner
from miner.data.synthetic import write_synthetic
from tests.helpers.stores import open_store

TOY = Path(miner.__file__).resolve().parent / "assets" / "toy_vgg.pt"
MODEL_ID = "toy_vgg-bird"
TOP = "block4_conv2"  # the toy CNN's top default layer, learned first
TOP_INDEX = 3  # its index bottom→top, which names its checkpoint file
ITERATIONS = 5  # enough work below the top layer to kill the child in the middle of it
WAIT_S = 300  # gives up on a child that never writes the checkpoint


def mine_command(store: Path, data: Path, cache: Path) -> list[str]:
    """``explgraph mine`` of the toy CNN on the birds, with progress bars (they show the layers)."""
    return [
        sys.executable,
        "-m",
        "explgraph",
        "--store",
        str(store),
        "mine",
        str(TOY),
        "--images",
        str(data),
        "--label",
        "bird",
        "--split",
        "",
        "--iterations",
        str(ITERATIONS),
        "--device",
        "cpu",
        "--cache-dir",
        str(cache),
    ]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command to the end and capture its output."""
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ)
    )


def kill_after_top_layer(command: list[str], cache: Path, log: Path) -> Path:
    """Start ``command``, SIGKILL it once the top layer's checkpoint exists; return that file."""
    with log.open("w") as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        deadline = time.monotonic() + WAIT_S
        found: list[Path] = []
        try:
            while not found:
                # waiting on the child (not sleeping) also notices if it ends first
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=0.02)
                found = sorted((cache / "graphs").glob(f"*/layer{TOP_INDEX}.pt"))
                if child.returncode is not None and not found:
                    pytest.fail(f"mine ended (exit {child.returncode}) first:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no checkpoint of the top layer after {WAIT_S} s")
            assert child.returncode is None, "mine finished before it could be killed"
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=60) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return found[0]


def stored(store: Path) -> dict[str, Any]:
    """Model status and counts, and every pattern's learned mean position, of the store."""
    with open_store(str(store), read_only=True) as opened:
        described = opened.describe_model(MODEL_ID)
        models = opened.query("MATCH (m:Model) RETURN count(*) AS n")[0]["n"]
        rows = opened.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.pattern_id AS id, "
            "p.mu_x AS x, p.mu_y AS y",
            {"m": MODEL_ID},
        )
    return {
        "status": described["status"],
        "models": models,
        "counts": {k: described[k] for k in ("n_patterns", "n_parents", "n_fires")},
        "mu": {row["id"]: (row["x"], row["y"]) for row in rows},
        "rows": len(rows),
    }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 synthetic 128-px images, 24 of them birds."""
    data = tmp_path_factory.mktemp("mine-resume") / "synth"
    write_synthetic(data, 96, size=128, seed=0)
    return data


def test_killed_mine_resumes_from_the_finished_layer(synth: Path, tmp_path: Path) -> None:
    store, cache = tmp_path / "store", tmp_path / "cache"
    command = mine_command(store, synth, cache)
    top = kill_after_top_layer(command, cache, tmp_path / "killed.log")
    killed_at = top.stat().st_mtime_ns
    # killed in the middle of learning: the bottom layer was never finished
    assert not (top.parent / "layer0.pt").exists()

    again = run(command)
    assert again.returncode == 0, again.stdout + again.stderr
    shown = again.stdout + again.stderr
    assert f"mined {MODEL_ID} on 24 images" in shown
    # the top layer came from its checkpoint: no learning bar for it, the file untouched
    assert f"learn {TOP}" not in shown
    assert "learn block3_conv1" in shown
    assert top.stat().st_mtime_ns == killed_at
    assert sorted(p.name for p in top.parent.glob("layer*.pt")) == [
        f"layer{i}.pt" for i in range(4)
    ]

    resumed = stored(store)
    assert resumed["status"] == "complete"
    assert resumed["models"] == 1
    assert resumed["rows"] == resumed["counts"]["n_patterns"] == len(resumed["mu"]) > 0

    # the same graph an uninterrupted run learns (same seed, same data)
    fresh_store = tmp_path / "fresh-store"
    fresh = run(mine_command(fresh_store, synth, tmp_path / "fresh-cache"))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    clean = stored(fresh_store)
    assert resumed["counts"] == clean["counts"]
    assert resumed["mu"].keys() == clean["mu"].keys()
    for pattern, (x, y) in clean["mu"].items():
        assert resumed["mu"][pattern] == pytest.approx((x, y), abs=1e-4), pattern
