"""An interpretable CNN mined into the embedded store: the model and its masked layer are marked."""

from __future__ import annotations

import json
from pathlib import Path

from explgraph.workflows.mine import MineRequest, run_mine
from miner.data.synthetic import write_synthetic
from miner.models import load_model
from miner.models.checkpoint import save_checkpoint
from miner.models.interpretable import make_interpretable
from miner.models.toy import TOY_ARCH, bundled_checkpoint
from tests.helpers.cli import run_cli
from tests.helpers.stores import env_settings, open_store


def _interpretable_checkpoint(path: Path) -> Path:
    """The bundled toy CNN with the template mask on block4_conv2 (no training needed here)."""
    loaded = load_model(str(bundled_checkpoint()))
    spec = make_interpretable(loaded.module, "block4_conv2", loaded.input_size, tau=0.05)
    return save_checkpoint(
        path,
        loaded.module,
        arch=TOY_ARCH,
        arch_kwargs=loaded.module.arch_kwargs(),  # type: ignore[operator]
        classes=loaded.classes,
        input_size=loaded.input_size,
        interpretable=spec.to_dict(),
    )


def test_mined_interpretable_model_is_marked(tmp_path: Path) -> None:
    data = tmp_path / "synth"
    write_synthetic(data, 32, size=128, seed=0)
    checkpoint = _interpretable_checkpoint(tmp_path / "icnn.pt")
    store = str(tmp_path / "store")
    request = MineRequest(
        model=str(checkpoint),
        images=data,
        cache_dir=tmp_path / "cache",
        layers=["block4_conv1", "block4_conv2"],
        label="bird",
        split=None,
        model_id="icnn-bird",
        device="cpu",
        settings_overrides={"iterations": 2},
    )
    run_mine(request, store, store_settings=env_settings())
    with open_store(store, read_only=True) as handle:
        model = handle.describe_model("icnn-bird")
        layers = handle.query(
            "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name, "
            "l.interpretable AS interpretable ORDER BY name",
            {"m": "icnn-bird"},
        )
    assert model["interpretable"] is True
    params = model["params"]
    assert params["interpretable"]["layer"] == "block4_conv2"
    assert params["interpretable"]["tau"] == 0.05
    assert layers == [
        {"name": "block4_conv1", "interpretable": False},
        {"name": "block4_conv2", "interpretable": True},
    ]
    shown = run_cli("show", "icnn-bird", store=store, env={"COLUMNS": "200"})
    assert "interpretable CNN: filter loss on block4_conv2" in shown.output
    assert "block4_conv2 (interpretable)" in shown.output
    described = json.loads(run_cli("show", "icnn-bird", "--json", store=store).stdout)
    assert described["model"]["interpretable"] is True
    marked = {row["layer"]: row["interpretable"] for row in described["layers"]}
    assert marked == {"block4_conv1": False, "block4_conv2": True}
