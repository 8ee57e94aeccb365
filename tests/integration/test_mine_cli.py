"""``explgraph mine`` end to end, as a user runs it: a child process per command.

The bundled toy CNN is mined into the embedded store and into each Bolt server (same data, same
cache, so the second engine pays only the write), MobileNetV2 with its offline ImageNet weights
into the embedded store, and bad input must end in one ``error:`` line and exit code 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import miner
from miner.data.synthetic import write_synthetic
from tests.helpers.stores import open_store

TOY = Path(miner.__file__).resolve().parent / "assets" / "toy_vgg.pt"
MODEL_ID = "toy_vgg-bird"
COUNTS = ("n_layers", "n_filters", "n_patterns", "n_parents", "n_fires")


def explgraph(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``explgraph --quiet --store STORE ARGS`` in a child process (environment inherited)."""
    return subprocess.run(
        [sys.executable, "-m", "explgraph", "--quiet", "--store", store, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=dict(os.environ),
    )


@dataclass(frozen=True)
class Mined:
    """The toy CNN mined once into an embedded store."""

    data: Path
    cache: Path
    store: str
    first: subprocess.CompletedProcess[str]

    def mine_args(self) -> list[str]:
        """The ``mine`` arguments every run of this module repeats."""
        return [
            "mine",
            str(TOY),
            "--images",
            str(self.data),
            "--label",
            "bird",
            "--split",
            "",
            "--iterations",
            "2",
            "--device",
            "cpu",
            "--cache-dir",
            str(self.cache),
        ]


def store_summary(spec: str) -> dict[str, Any]:
    """Status, counts, Image nodes and how many Model nodes the store holds."""
    with open_store(spec, read_only=True) as store:
        described = store.describe_model(MODEL_ID)
        models = store.query("MATCH (m:Model) RETURN count(*) AS n")[0]["n"]
        images = store.query("MATCH (i:Image) RETURN count(*) AS n")[0]["n"]
        patterns = store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN count(*) AS n", {"m": MODEL_ID}
        )[0]["n"]
    return {
        "status": described["status"],
        "n_images": described["n_images"],
        "models": models,
        "images": images,
        "patterns": patterns,
        **{name: described[name] for name in COUNTS},
    }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 synthetic 128-px images, 24 of them birds."""
    data = tmp_path_factory.mktemp("mine-cli") / "synth"
    write_synthetic(data, 96, size=128, seed=0)
    return data


@pytest.fixture(scope="module")
def mined(synth: Path) -> Mined:
    """The toy CNN mined on the 24 birds into an embedded store (2 EM iterations)."""
    root = synth.parent
    partial = Mined(synth, root / "cache", str(root / "store"), subprocess.CompletedProcess([], 0))
    first = explgraph(partial.store, *partial.mine_args())
    return Mined(synth, partial.cache, partial.store, first)


def test_toy_mine_completes_into_the_embedded_store(mined: Mined) -> None:
    assert mined.first.returncode == 0, mined.first.stderr
    assert f"mined {MODEL_ID} on 24 images" in mined.first.stdout
    summary = store_summary(mined.store)
    assert summary["status"] == "complete"
    assert summary["n_images"] == 24
    assert summary["models"] == 1
    assert summary["images"] == 24
    assert summary["n_layers"] == 4
    assert summary["n_patterns"] == summary["patterns"] > 0
    # two iterations: parents are chosen in the second, so the lower layers have PARENT edges
    assert summary["n_parents"] > 0
    assert summary["n_fires"] > 0
    # the summary printed by the command counts what was written
    assert f"{summary['n_parents']} PARENT edges, {summary['n_fires']} FIRES edges" in (
        mined.first.stdout
    )


def test_toy_mine_rerun_is_already_stored_and_keeps_one_copy(mined: Mined) -> None:
    before = store_summary(mined.store)
    again = explgraph(mined.store, *mined.mine_args())
    assert again.returncode == 0, again.stderr
    assert "already in the store" in again.stdout
    assert store_summary(mined.store) == before


@pytest.mark.bolt
def test_toy_mine_into_bolt_matches_the_embedded_store(mined: Mined, bolt_store_spec: str) -> None:
    embedded = store_summary(mined.store)
    done = explgraph(bolt_store_spec, *mined.mine_args())
    assert done.returncode == 0, done.stderr
    assert f"mined {MODEL_ID} on 24 images" in done.stdout
    on_bolt = store_summary(bolt_store_spec)
    assert on_bolt == embedded  # complete, one model, and every count equal
    # same inputs again: nothing is mined or written a second time
    again = explgraph(bolt_store_spec, *mined.mine_args())
    assert again.returncode == 0, again.stderr
    assert "already in the store" in again.stdout
    assert store_summary(bolt_store_spec) == embedded


def test_mobilenet_v2_with_offline_weights_mines_into_the_embedded_store(
    synth: Path, tmp_path: Path, offline_torch_home: Path
) -> None:
    store = str(tmp_path / "store")
    done = explgraph(
        store,
        "mine",
        "mobilenet_v2",
        "--weights",
        "IMAGENET1K_V1",
        "--images",
        str(synth),
        "--label",
        "bird",
        "--split",
        "",
        "--max-images",
        "6",
        "--iterations",
        "1",
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert done.returncode == 0, done.stderr
    with open_store(store, read_only=True) as opened:
        described = opened.describe_model("mobilenet_v2-bird")
    assert described["status"] == "complete"
    assert described["architecture"] == "mobilenet_v2"
    assert described["weights"] == "IMAGENET1K_V1"
    assert described["n_images"] == 6
    assert described["n_layers"] == 2  # MobileNetV2's default layers (28x28 and 14x14)
    assert described["n_patterns"] > 0
    assert described["n_fires"] > 0


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_layer_is_one_error_line(mined: Mined, tmp_path: Path) -> None:
    line = _one_error_line(
        explgraph(str(tmp_path / "store"), *mined.mine_args(), "--layers", "block9_conv9")
    )
    assert "block9_conv9" in line
    assert "block4_conv2" in line  # the message lists the valid names


def test_missing_image_folder_is_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    line = _one_error_line(
        explgraph(str(tmp_path / "store"), "mine", str(TOY), "--images", str(missing))
    )
    assert str(missing) in line


def test_weights_of_another_architecture_are_one_error_line(synth: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(3, 4).state_dict(), wrong)
    line = _one_error_line(
        explgraph(
            str(tmp_path / "store"),
            "mine",
            "mobilenet_v2",
            "--weights",
            str(wrong),
            "--images",
            str(synth),
            "--label",
            "bird",
        )
    )
    assert str(wrong) in line
    assert "MobileNetV2" in line
