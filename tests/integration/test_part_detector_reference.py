"""The perfect part detector reference on the mined toy graph: it shares the stability report's
patterns, frozen prior and images, and sits on a landmark."""

from __future__ import annotations

import math

from miner.data.folder import load_dataset
from queries.evaluate_stability import evaluate_stability
from queries.loaded import LoadedGraph
from queries.part_detector_reference import perfect_detector_reference
from tests.helpers.mined import TOY_LABEL, MinedToy
from tests.helpers.stores import open_store


def test_reference_matches_the_stability_report_on_the_same_patterns(mined_toy: MinedToy) -> None:
    records = list(load_dataset(mined_toy.data_dir).select(split="test", label=TOY_LABEL).records)
    with open_store(mined_toy.store_spec, read_only=True) as store:
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        report = evaluate_stability(graph, records, controls=False).to_dict()
        reference = perfect_detector_reference(
            LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir), records
        )
    for name in ("patterns", "frozen_prior"):
        assert math.isclose(reference["signed"][name], report["signed"][name], rel_tol=1e-5), name
    perfect = reference["signed"]["perfect_part_detector"]
    assert 0 < perfect < 1
    assert math.isclose(
        reference["perfect_over_frozen"], perfect / reference["signed"]["frozen_prior"]
    )
    assert len(reference["per_layer"]) == len(report["per_layer"])
    assert set(reference["landmarks"]) == set(report["landmarks"])
