"""``diagnose`` on the mined toy graph: verdicts, their storage, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from miner.data.folder import load_dataset
from queries.canned import run_canned
from queries.diagnose import VERDICTS, DiagnosisReport, diagnose, store_diagnosis
from queries.loaded import LoadedGraph
from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy
from tests.helpers.stores import open_store


@pytest.fixture(scope="module")
def report(mined_toy: MinedToy) -> DiagnosisReport:
    records = load_dataset(mined_toy.data_dir).select(label=TOY_LABEL).records
    with open_store(mined_toy.store_spec, read_only=True) as store:
        return diagnose(
            LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir), records
        )


def test_every_pattern_gets_a_verdict(report: DiagnosisReport, mined_toy: MinedToy) -> None:
    with open_store(mined_toy.store_spec, read_only=True) as store:
        n_patterns = store.describe_model(mined_toy.model_id)["n_patterns"]
    frame = report.patterns
    assert len(frame) == n_patterns and frame["pattern_id"].is_unique
    assert set(frame["diagnosis"]) <= set(VERDICTS)
    assert frame["off_object"].between(0.0, 1.0).all()
    background = frame["diagnosis"].str.contains("background")
    assert (background == (frame["off_object"] > report.off_limit)).all()
    unstable = frame["diagnosis"].str.contains("unstable")
    assert (unstable == (frame["instability"] > frame["filter_baseline"])).all()


def test_most_patterns_stay_on_the_object(report: DiagnosisReport) -> None:
    # the graph was learned on object crops: off-object firing is the exception
    assert report.patterns["off_object"].mean() < 0.25
    assert (report.patterns["diagnosis"] == "ok").mean() > 0.5
    assert np.isfinite(report.patterns["instability"]).any()


def test_verdicts_are_stored_and_filterable(
    report: DiagnosisReport, mined_toy: MinedToy, tmp_path: Path
) -> None:
    spec = mined_toy.copy_store(tmp_path / "store")
    with open_store(spec) as store:
        store_diagnosis(store, report)
    with open_store(spec, read_only=True) as store:
        counts = {
            row["d"]: row["n"]
            for row in store.query(
                "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.diagnosis AS d, count(*) AS n",
                {"m": mined_toy.model_id},
            )
        }
        flagged = run_canned(
            store, "diagnosed-patterns", {"model": mined_toy.model_id, "limit": 100000}
        )
    assert counts == report.patterns["diagnosis"].value_counts().to_dict()
    expected = report.flagged()
    assert {r["pattern_id"] for r in flagged} == set(expected["pattern_id"])
    stored = {r["pattern_id"]: r["off_object"] for r in flagged}
    for pid, off in zip(expected["pattern_id"], expected["off_object"], strict=True):
        assert stored[pid] == pytest.approx(off)


def test_cli_prints_json_and_stores(mined_toy: MinedToy, tmp_path: Path) -> None:
    spec = mined_toy.copy_store(tmp_path / "store")
    result = run_cli(
        "diagnose",
        mined_toy.model_id,
        "--annotations",
        str(mined_toy.data_dir / "annotations.json"),
        "--cache-dir",
        str(mined_toy.cache_dir),
        "--json",
        store=spec,
        quiet=True,
    )
    summary = json.loads(result.stdout)
    assert [row["layer"] for row in summary["per_layer"]]
    with open_store(spec, read_only=True) as store:
        unset = store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m AND p.diagnosis IS NULL RETURN count(*) AS n",
            {"m": mined_toy.model_id},
        )[0]["n"]
    assert unset == 0


def test_cli_without_boxes_is_one_clear_error(mined_toy: MinedToy, tmp_path: Path) -> None:
    from PIL import Image

    empty = tmp_path / "plain"
    (empty / TOY_LABEL).mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(empty / TOY_LABEL / "a.png")  # labelled by folder, no box
    result = run_cli(
        "diagnose",
        mined_toy.model_id,
        "--annotations",
        str(empty),
        "--no-store",
        store=mined_toy.store_spec,
        expect=1,
    )
    assert "box" in result.error_line


def test_background_patterns_are_the_ones_clutter_fires(
    report: DiagnosisReport, mined_toy: MinedToy, tmp_path: Path
) -> None:
    """Cross-check with explain: on object-free clutter, the patterns that still fire are
    far more often the ones diagnose called background than patterns at large."""
    from queries.explain import explain_image
    from tests.integration.test_explain import clutter

    verdict = report.patterns.set_index("pattern_id")["diagnosis"].str.contains("background")
    fired: list[str] = []
    with open_store(mined_toy.store_spec, read_only=True) as store:
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        for seed in (0, 3):
            image = clutter(tmp_path / f"clutter{seed}.png", seed=seed)
            found = explain_image(store, graph, image)
            fired += [p.pattern_id for rows in found.fired.values() for p in rows]
    assert fired
    assert verdict[fired].mean() > 2 * verdict.mean()
