"""A diagnosis written by ``query --write`` shows in ``diagnosed-patterns`` at once: the FLAGGED
edges that query reads are rebuilt after such a write (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.mined import MinedToy


def test_a_diagnosis_set_by_hand_is_flagged(
    mined_toy: MinedToy,
    tmp_path: Path,
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    model = mined_toy.model_id

    def flagged() -> list[str]:
        out = run_cli(
            "query",
            "diagnosed-patterns",
            "-p",
            f"model={model}",
            "-p",
            "limit=100000",
            "--format",
            "json",
            store=store,
            quiet=True,
        ).stdout
        return [row["pattern_id"] for row in json.loads(out)]

    before = flagged()
    rows = json.loads(
        run_cli(
            "query",
            "MATCH (p:Pattern) WHERE p.model_id = $m RETURN p.pattern_id AS id ORDER BY id LIMIT 1",
            "-p",
            f"m={model}",
            "--format",
            "json",
            store=store,
            quiet=True,
        ).stdout
    )
    pattern = rows[0]["id"]
    assert pattern not in before
    run_cli(
        "query", "--write", "MATCH (p:Pattern {pattern_id: $id}) "
        "SET p.diagnosis = 'background', p.off_object = 2.0", "-p", f"id={pattern}",
        store=store, quiet=True,
    )  # fmt: skip
    after = flagged()
    assert after[0] == pattern  # off_object 2.0: above every share, so first
    assert sorted(after) == sorted([*before, pattern])
