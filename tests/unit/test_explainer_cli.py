"""``explgraph explain-net`` run as a user runs it: the installed console script, a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch

from explgraph.core.faults import FAULT_ENV, FAULT_EXIT_CODE
from miner.explainer import ExplainerConfig, explain_layer, read_explainer, synthetic_crops
from miner.models import load_model
from miner.models.toy import bundled_checkpoint
from tests.helpers.cli import console_script

REPO = Path(__file__).resolve().parents[2]


def explgraph(home: Path, *args: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    """``explgraph ARGS`` through the script installed next to this interpreter (``fault``: the
    crash point it stops at, see explgraph/core/faults.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPLGRAPH_", "NEO4J_"))}
    env |= {"PYTHONPATH": str(REPO), "HOME": str(home), "OMP_NUM_THREADS": "1"}
    env |= {"EXPLGRAPH_CACHE": str(home / "cache"), "EXPLGRAPH_OFFLINE": "1"}
    env |= {FAULT_ENV: fault} if fault else {}
    return subprocess.run(
        [str(console_script()), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    return lines[0]


TRAIN = ["--layer", "block4_conv2", "--n", "40", "--epochs", "2", "--batch-size", "16"]


def test_train_crash_resume_and_evaluate(tmp_path: Path) -> None:
    toy = str(bundled_checkpoint())
    out = tmp_path / "explainer.pt"
    args = ["explain-net", "train", toy, *TRAIN, "--out", str(out)]
    crashed = explgraph(tmp_path, "-q", *args, fault="explainer.checkpoint@1")
    assert crashed.returncode == FAULT_EXIT_CODE and not out.exists(), crashed.stderr

    resumed = explgraph(tmp_path, "-v", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming explainer training after epoch 1" in resumed.stderr
    assert f"explainer: {out}" in resumed.stdout
    trained = read_explainer(out)
    assert trained.epoch == 2 and trained.spec.layer == "block4_conv2"
    assert trained.performer["fingerprint"] and trained.data["source"] == "synthetic"

    loaded = load_model(toy)
    crops = synthetic_crops(40, 0, "train", loaded.input_size)
    whole = explain_layer(loaded, "block4_conv2", crops, ExplainerConfig(2, 16, seed=0))
    assert all(torch.equal(trained.state_dict[k], v) for k, v in whole.state_dict.items())

    measured = explgraph(tmp_path, "explain-net", "evaluate", str(out), "--n", "40", "--json")
    assert measured.returncode == 0, measured.stderr
    report = json.loads(measured.stdout)
    assert report["layer"] == "block4_conv2" and 0 < report["n_images"] < 40
    assert 0.0 <= report["p"]["mean"] <= 1.0 and 0.0 <= report["agreement"] <= 1.0
    assert report["raw_filters"]["n_filters"] == 64
    assert report["interpretable_filters"]["n_filters"] == 32


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    toy = str(bundled_checkpoint())
    unknown = explgraph(tmp_path, "explain-net", "train", toy, "--layer", "nope", "--n", "8")
    assert "unknown layer 'nope'" in one_error_line(unknown)
    (tmp_path / "explainer.pt").write_text("x")
    exists = explgraph(tmp_path, "explain-net", "train", toy, "--layer", "block4_conv2")
    assert "pass --force" in one_error_line(exists)
    torch.save({"x": 1}, tmp_path / "other.pt")
    other = explgraph(tmp_path, "explain-net", "evaluate", "other.pt")
    assert "not an explainer checkpoint" in one_error_line(other)
