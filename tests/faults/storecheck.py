"""What every fault test asserts about the store afterwards, on every engine.

* it opens read-only (no "recovery pending", no "pass --write");
* no orphans: every Layer, Filter, Pattern and FIRES edge belongs to a Model that exists, and
  every Image is fired by some pattern;
* each model is there at most once, and ``complete`` ones have exactly their expected counts.
"""

from __future__ import annotations

from typing import Any

from graphstore import GraphRecords
from tests.helpers.stores import open_store, tiny_records


def tiny_model(model_id: str, *, seed: int = 0) -> GraphRecords:
    """The store tests' tiny model; the seed changes its shape, so counts tell copies apart."""
    return tiny_records(model_id, seed=seed, channels=2 + seed % 2)


def expected_counts(records: GraphRecords) -> dict[str, int]:
    """The counts ``describe_model`` reports for a complete copy of ``records``."""
    return {
        "n_layers": len(records.layers),
        "n_filters": len(records.filters),
        "n_patterns": len(records.patterns),
        "n_parents": len(records.parents),
        "n_fires": len(records.fires),
    }


def orphans(spec: str) -> dict[str, int]:
    """Nodes and edges whose model is gone, and images nothing fires on."""
    with open_store(spec, read_only=True) as store:
        ids = [row["id"] for row in store.query("MATCH (m:Model) RETURN m.model_id AS id")]
        found = {}
        for label in ("Layer", "Filter", "Pattern"):
            found[label] = store.query(
                f"MATCH (n:{label}) WHERE NOT n.model_id IN $ids RETURN count(n) AS c",
                {"ids": ids},
            )[0]["c"]
        found["FIRES"] = store.query(
            "MATCH (:Image)-[f:FIRES]->(:Pattern) WHERE NOT f.model_id IN $ids "
            "RETURN count(f) AS c",
            {"ids": ids},
        )[0]["c"]
        found["Image"] = store.query(
            "MATCH (i:Image) OPTIONAL MATCH (i)-[f:FIRES]->(:Pattern) WITH i, count(f) AS uses "
            "WHERE uses = 0 RETURN count(i) AS c"
        )[0]["c"]
    return {name: int(count) for name, count in found.items() if count}


def models(spec: str) -> dict[str, dict[str, Any]]:
    """Every model (read-only open) with its status and counts."""
    with open_store(spec, read_only=True) as store:
        rows = store.list_models()
    assert len({row["model_id"] for row in rows}) == len(rows), rows
    return {row["model_id"]: row for row in rows}


def assert_sound(spec: str, complete: dict[str, dict[str, int]] | None = None) -> None:
    """The store opens read-only, holds no orphans, and each listed model is complete with
    exactly the given counts (one complete copy)."""
    listed = models(spec)
    assert orphans(spec) == {}, f"orphans: {orphans(spec)}; models: {listed}"
    for model_id, counts in (complete or {}).items():
        assert model_id in listed, f"{model_id} missing; models: {sorted(listed)}"
        row = listed[model_id]
        assert row["status"] == "complete", row
        assert {k: row[k] for k in counts} == counts, row
