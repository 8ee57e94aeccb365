"""``explgraph compare`` on mined toy graphs: a model against itself, against a toy CNN trained
from another seed, MATCHES edges and the no-counterpart Cypher on every engine, and the CLI.

The second CNN, ``tests/assets/toy_vgg_seed1.pt``, was made with::

    explgraph train --n 1600 --epochs 6 --seed 1 --threads 1 --out tests/assets/toy_vgg_seed1.pt

(81.75% test accuracy on the synthetic crops; the bundled toy uses the default 2400 images and
8 epochs with seed 0.) Matching is restricted to the top stage's two layers so each comparison
takes seconds on a CPU; the per-layer logic is the same for every layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from miner.data.folder import load_dataset
from miner.data.records import ImageRecord
from queries.compare import (
    CompareReport,
    CompareSettings,
    compare_models,
    unmatched_per_layer,
    write_matches,
)
from queries.loaded import LoadedGraph
from tests.helpers.cli import run_cli
from tests.helpers.mined import SEED1_CHECKPOINT, SEED1_ID, TOY_LABEL, MinedToy
from tests.helpers.stores import open_store

LAYERS = ("block4_conv1", "block4_conv2")
SETTINGS = CompareSettings(layers_a=LAYERS, layers_b=LAYERS)


def _records(mined: MinedToy) -> list[ImageRecord]:
    return list(load_dataset(mined.data_dir).select(split="train", label=TOY_LABEL).records)


def _compare(store_spec: str, mined: MinedToy, a: str, b: str) -> CompareReport:
    with open_store(store_spec, read_only=True) as store:
        loaded_a = LoadedGraph.open(store, a, cache_dir=mined.cache_dir, device="cpu")
        loaded_b = LoadedGraph.open(store, b, cache_dir=mined.cache_dir, device="cpu")
        return compare_models(store, loaded_a, loaded_b, _records(mined), settings=SETTINGS)


@pytest.fixture(scope="module")
def two_toys(mined_toy: MinedToy, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A private copy of the mined toy's store with the seed-1 toy mined beside it."""
    spec = mined_toy.copy_store(tmp_path_factory.mktemp("compare") / "store")
    mined_toy.mine_into(spec, checkpoint=SEED1_CHECKPOINT, model_id=SEED1_ID)
    return spec


@pytest.fixture(scope="module")
def cross(two_toys: str, mined_toy: MinedToy) -> CompareReport:
    """The toy CNN against the seed-1 toy, computed once."""
    return _compare(two_toys, mined_toy, mined_toy.model_id, SEED1_ID)


def _pairs(report: CompareReport) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["layer_a"], row["layer_b"]): row for row in report.layer_pairs}


def test_a_model_compared_with_itself_matches_every_pattern_to_itself(
    mined_toy: MinedToy,
) -> None:
    report = _compare(mined_toy.store_spec, mined_toy, mined_toy.model_id, mined_toy.model_id)

    pairs = _pairs(report)
    for layer in LAYERS:
        row = pairs[(layer, layer)]
        assert row["matched"] == row["patterns_a"] == row["patterns_b"] > 0
        assert row["unique_a"] == row["unique_b"] == 0
        same = report.matches[
            (report.matches["layer_a"] == layer) & (report.matches["layer_b"] == layer)
        ]
        assert (same["idx_a"] == same["idx_b"]).all()
        assert (same["pattern_a"] == same["pattern_b"]).all()
        assert same["similarity"].min() == pytest.approx(1.0, abs=1e-5)
    across = pairs[LAYERS]
    assert 0 < across["matched"] < min(across["patterns_a"], across["patterns_b"])
    assert report.matched_a == sum(pairs[(layer, layer)]["patterns_a"] for layer in LAYERS)
    stats_a, stats_b = report.to_dict()["statistics"].values()
    assert stats_a == stats_b and stats_a["patterns"] > 0 and stats_a["edges"] > 0


def test_a_toy_trained_from_another_seed_shares_some_but_not_all_patterns(
    cross: CompareReport, mined_toy: MinedToy
) -> None:
    pairs = _pairs(cross)
    assert set(pairs) == {(a, b) for a in LAYERS for b in LAYERS}
    for (layer_a, layer_b), row in pairs.items():
        assert row["matched"] + row["unique_a"] == row["patterns_a"]
        assert row["matched"] + row["unique_b"] == row["patterns_b"]
        chosen = cross.matches[
            (cross.matches["layer_a"] == layer_a) & (cross.matches["layer_b"] == layer_b)
        ]
        assert len(chosen) == row["matched"]
        assert chosen["idx_a"].is_unique and chosen["idx_b"].is_unique  # one-to-one
        assert (chosen["similarity"] >= SETTINGS.threshold).all()
        assert (chosen["similarity"] <= 1.0 + 1e-6).all()
    for layer in LAYERS:
        row = pairs[(layer, layer)]
        assert 0 < row["matched"] < row["patterns_a"], row  # some, but not all
        assert row["mean_similarity"] < 0.999  # different CNNs never agree exactly
    assert cross.matched_a == sum(r["matched"] for r in cross.per_layer_a)
    assert 0 < cross.matched_a < sum(r["patterns"] for r in cross.per_layer_a)
    # parts: the synthetic birds carry keypoints; both models have stable patterns for some
    assert {row["part"] for row in cross.parts} >= {"head", "tail"}
    assert any(row["stable_a"] > 0 and row["stable_b"] > 0 for row in cross.parts)
    for row in cross.parts:
        assert 0 <= row["stable_a_matched"] <= row["stable_a"]
    stats = cross.to_dict()["statistics"]
    assert stats["a"]["patterns"] == stats["b"]["patterns"]  # same architecture and settings
    json.dumps(cross.to_dict())  # JSON-ready as it is


def test_matches_are_written_and_queried_the_same_on_every_engine(
    store_spec: str, mined_toy: MinedToy, cross: CompareReport
) -> None:
    mined_toy.mine_into(store_spec)
    mined_toy.mine_into(store_spec, checkpoint=SEED1_CHECKPOINT, model_id=SEED1_ID)

    report = _compare(store_spec, mined_toy, mined_toy.model_id, SEED1_ID)
    with open_store(store_spec) as store:
        written = write_matches(store, mined_toy.model_id, SEED1_ID, report.matches)
        again = write_matches(store, mined_toy.model_id, SEED1_ID, report.matches)
        edges = store.query(
            "MATCH (p:Pattern)-[m:MATCHES]->(q:Pattern) WHERE p.model_id = $a "
            "AND q.model_id = $b RETURN count(m) AS c, min(m.similarity) AS s",
            {"a": mined_toy.model_id, "b": SEED1_ID},
        )
        unmatched = unmatched_per_layer(store, mined_toy.model_id, SEED1_ID)

    # the graphs read back from either engine give the same matches
    assert report.layer_pairs == cross.layer_pairs
    assert written == again == len(report.matches) > 0
    assert edges[0]["c"] == written  # re-writing replaced the edges instead of adding
    assert edges[0]["s"] >= SETTINGS.threshold
    for row in report.per_layer_a:
        assert unmatched.get(row["layer"], 0) == row["unique"]
    assert unmatched["block3_conv1"] > 0  # a layer left out of the comparison has no matches


def test_cli_compare_prints_json_writes_edges_and_the_png(
    two_toys: str, mined_toy: MinedToy, cross: CompareReport, tmp_path: Path
) -> None:
    spec = two_toys  # the module's private copy: writing MATCHES there is fine
    png = tmp_path / "matrix.png"
    layers = ",".join(LAYERS)

    done = run_cli(
        "compare", mined_toy.model_id, SEED1_ID,
        "--layers-a", layers, "--layers-b", layers,
        "--cache-dir", str(mined_toy.cache_dir), "--png", str(png), "--json",
        store=spec, quiet=True,
    )  # fmt: skip

    result = json.loads(done.stdout)
    assert result["n_matches"] == result["matches_written"] == len(cross.matches)
    assert result["layer_pairs"] == json.loads(json.dumps(cross.layer_pairs))
    assert png.stat().st_size > 0
    again = run_cli(
        "compare", mined_toy.model_id, SEED1_ID,
        "--layers-a", layers, "--layers-b", layers,
        "--cache-dir", str(mined_toy.cache_dir), "--no-write",
        store=spec, quiet=True,
    )  # fmt: skip
    assert "matched" in again.stdout and "graph statistics" in again.stdout


def test_cli_compare_names_the_valid_layers_on_a_typo(mined_toy: MinedToy) -> None:
    done = run_cli(
        "compare", mined_toy.model_id, mined_toy.model_id,
        "--layers-a", "conv9", "--cache-dir", str(mined_toy.cache_dir), "--no-write",
        store=mined_toy.store_spec, quiet=True, expect=1,
    )  # fmt: skip

    assert done.stdout == ""
    err = done.stderr
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "conv9" in err and "block4_conv2" in err
