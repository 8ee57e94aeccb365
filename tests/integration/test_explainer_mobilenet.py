"""An explainer of MobileNetV2 (offline ImageNet weights) in the store on every engine, as a user
builds it: ``mine`` the performer, ``explain-net train`` and ``explain-net evaluate --model``,
then the two canned queries, each command the installed console script in a child process.

Tiny on purpose (a few images, one epoch): what is checked is that a real pretrained CNN's
explainer travels from the network to both engines and answers the queries with its own figures;
bench/explainer.py measures how good it is.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from miner.data.synthetic import write_synthetic
from tests.helpers.cli import console_script

pytestmark = pytest.mark.slow

MODEL_ID = "mobilenet_v2-bird"
LAYER = "features.13.conv.1"
MOBILENET = ["mobilenet_v2", "--weights", "IMAGENET1K_V1"]
DATA = ["--n", "40", "--data-seed", "3"]


def explgraph(store: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``explgraph --quiet --store STORE ARGS`` through the installed console script."""
    env = dict(os.environ) | {"OMP_NUM_THREADS": "1", "EXPLGRAPH_OFFLINE": "1"}
    return subprocess.run(
        [str(console_script()), "--quiet", "--store", store, *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
        cwd=cwd,
    )


def canned(store: str, name: str, cwd: Path) -> list[dict[str, Any]]:
    """The rows of canned query ``name`` for the model, through ``explgraph query -f json``."""
    done = explgraph(store, "query", name, "-p", f"model={MODEL_ID}", "-f", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 synthetic 128-px images (12 birds) to mine the performer on."""
    data = tmp_path_factory.mktemp("mnv2-explainer") / "synth"
    write_synthetic(data, 48, size=128, seed=0)
    return data


@pytest.fixture(scope="module")
def trained(synth: Path) -> Path:
    """An explainer of MobileNetV2's 14x14 depthwise block, trained for one epoch."""
    out = synth.parent / "explainer.pt"
    done = explgraph(
        str(synth.parent / "unused-store"),
        "explain-net", "train", *MOBILENET, "--layer", LAYER, *DATA,
        "--epochs", "1", "--batch-size", "8", "--filters", "8", "--hidden", "16",
        "--out", str(out), "--cache-dir", str(synth.parent / "cache"),
        cwd=synth.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"explainer: {out}" in done.stdout
    return out


def test_a_mobilenet_v2_explainer_is_stored_and_queried(
    store_spec: str, synth: Path, trained: Path, offline_torch_home: Path, tmp_path: Path
) -> None:
    mined = explgraph(
        store_spec,
        "mine", *MOBILENET, "--images", str(synth), "--label", "bird", "--split", "",
        "--max-images", "4", "--iterations", "1", "--device", "cpu",
        "--cache-dir", str(synth.parent / "cache"),
        cwd=tmp_path,
    )  # fmt: skip
    assert mined.returncode == 0, mined.stderr
    measured = explgraph(
        store_spec, "explain-net", "evaluate", str(trained), *DATA, "--model", MODEL_ID,
        cwd=tmp_path,
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    assert f"stored: {MODEL_ID}/{LAYER}/explainer" in measured.stdout
    agreement = next(line for line in measured.stdout.splitlines() if "agreement" in line)

    rows = canned(store_spec, "explained-layers", tmp_path)
    assert [(r["model"], r["layer"], r["control"]) for r in rows] == [(MODEL_ID, LAYER, False)]
    assert rows[0]["n_filters"] == 8
    assert 0.0 <= rows[0]["p_mean"] <= 1.0 and rows[0]["reconstruction_error"] > 0.0
    assert f"{rows[0]['agreement']:.2%}" in agreement  # the stored figure is the printed one

    covered = canned(store_spec, "explainer-parts", tmp_path)
    assert covered and {r["layer"] for r in covered} == {LAYER}
    indices = [i for r in covered for i in r["filters"]]
    assert len(indices) == len(set(indices)) and set(indices) <= set(range(8))  # one part each
    assert all(r["n_filters"] == len(r["filters"]) for r in covered)
