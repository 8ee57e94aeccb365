"""Commands that need no CNN do not import torch (5-20 s and ~900 MB per call otherwise).

Each case runs the CLI's ``main`` in a fresh interpreter (this test session has torch loaded
already), then reports whether ``torch`` (or torchvision) reached ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
sys.argv = ["explgraph", *json.loads(sys.argv[1])]
from explgraph.cli import main
code = 0
try:
    main()
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small synthetic model ``m1`` (and a spare ``m2`` to delete) in an embedded store."""
    from graphstore.testing.synthetic import LayerShape, synthetic_records
    from tests.helpers.stores import open_store

    spec = str(tmp_path_factory.mktemp("startup") / "store")
    layers = (LayerShape("low", 4, 8.0, 2), LayerShape("high", 2, 16.0, 2))
    with open_store(spec) as store:
        for model_id in ("m1", "m2"):
            store.write_model(synthetic_records(model_id, channels=2, layers=layers, n_images=2))
    return spec


def run_in_process(args: list[str], cwd: Path) -> dict[str, object]:
    """Run ``explgraph ARGS`` through ``main`` in a fresh interpreter; its exit code and the
    heavy modules it imported."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=cwd,
    )
    verdict: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    verdict["output"] = done.stdout + done.stderr
    return verdict


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["models"],
        ["query", "MATCH (p:Pattern) RETURN p.pattern_id AS id ORDER BY id LIMIT 3"],
        ["query", "--list"],
        ["store", "info"],
        ["show", "m1"],
        ["export", "m1", "--format", "json"],
        ["delete", "m2", "--yes"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_commands_without_a_cnn_do_not_import_torch(
    store_dir: str, args: list[str], tmp_path: Path
) -> None:
    verdict = run_in_process(["--store", store_dir, *args], tmp_path)
    assert verdict["code"] in (0, None), verdict["output"]
    assert verdict["heavy"] == [], f"{args} imported {verdict['heavy']}"


def test_a_command_with_a_cnn_does_import_torch(tmp_path: Path) -> None:
    """The probe can see torch: ``train --help`` stays light, ``train`` itself loads it."""
    verdict = run_in_process(["train", "--data", str(tmp_path), "--epochs", "1"], tmp_path)
    assert verdict["code"] == 1, verdict["output"]  # no images in tmp_path
    assert "torch" in verdict["heavy"], verdict["output"]
