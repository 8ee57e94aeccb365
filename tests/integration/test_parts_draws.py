"""``evaluate parts --draws N --seed S`` on the mined toy graph: seeded shot draws, mean ± sd,
the facing-aware and oracle-facing priors, left/right accuracy."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy


def test_parts_over_seeded_draws(
    mined_toy: MinedToy,
    tmp_path: Path,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    args = (
        "evaluate", "parts", mined_toy.model_id, "--part", "head", "--label", TOY_LABEL,
        "--annotations", str(mined_toy.data_dir / "annotations.json"),
        "--draws", "3", "--seed", "11", "--cache-dir", str(mined_toy.cache_dir),
    )  # fmt: skip
    out = run_cli(*args, "--json", store=store, quiet=True).stdout
    result = json.loads(out)
    assert result["draw_seeds"] == [11, 12, 13] and len(result["per_draw"]) == 3
    shot_sets = {tuple(row["shots"]) for row in result["per_draw"]}
    assert len(shot_sets) > 1  # the draws differ
    summary = result["summary"]
    assert set(summary) == {
        "aog", "raw_filters", "nn_transfer", "static_prior", "facing_prior", "oracle_facing_prior",
        "appearance_alone", "appearance_shot_prior",
    }  # fmt: skip
    assert summary["oracle_facing_prior"]["reference_only"]
    assert result["best_baseline"] != "oracle_facing_prior"
    for name, row in summary.items():
        assert row["min"] <= row["mean"] <= row["max"], name
        assert 0 <= row["left_right"] <= 1, name
    # the oracle knows the side: it is never on the wrong half
    assert summary["oracle_facing_prior"]["left_right"] == 1.0
    again = run_cli(*args, "--json", store=store, quiet=True).stdout
    assert json.loads(again)["summary"] == summary  # seeded: the same draws, the same figures
    table = run_cli(*args, store=store, quiet=True).stdout
    assert "left/right" in table and "AOG / best baseline" in table
    refused = run_cli(
        *args, "--shots", str(tmp_path / "x.json"), store=store, quiet=True, expect=None
    )
    assert refused.exit_code != 0 and "not both" in refused.stderr
