"""kill -9 (and Ctrl-C) at named instants of ``explgraph mine``: extraction, learning, the write,
and a ``--force`` replacement.

One chain, on LadybugDB: extraction and learning happen before any store is touched, so they
are engine-independent, and every write and replace instant of the Bolt engine is killed by
``test_store_kills.py`` and ``tests/integration/test_store_crash.py`` (a second whole chain on
the ArcadeDB peer cost CI minutes and covered nothing more). Each run is killed at the next
instant and the following run resumes from what the killed one left (feature cache, layer
checkpoints, store). After every kill the store must open read-only, hold no orphans and no half
model marked complete; a killed replacement must leave the previous complete copy. The run that
finally completes must store exactly the graph an uninterrupted run stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from miner.data.synthetic import write_synthetic
from miner.models.toy import bundled_checkpoint
from tests.faults.runner import explgraph, killed, one_line_error
from tests.faults.storecheck import assert_sound, models, orphans

MODEL = "toy_vgg-bird"


@pytest.fixture(scope="module")
def birds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 synthetic 128-px images, 8 of them birds."""
    data = tmp_path_factory.mktemp("fault-mine") / "synth"
    write_synthetic(data, 32, size=128, seed=0)
    return data


def _mine(spec: str, data: Path, cache: Path, *extra: str, **env: str):  # type: ignore[no-untyped-def]
    return explgraph(
        "--store", spec, "--quiet", "mine", str(bundled_checkpoint()), "--images", str(data),
        "--label", "bird", "--split", "", "--iterations", "2", "--batch-size", "4",
        "--device", "cpu", "--cache-dir", str(cache), *extra, **env,
    )  # fmt: skip


def _counts(spec: str) -> dict[str, int]:
    row = models(spec)[MODEL]
    return {k: row[k] for k in ("n_layers", "n_filters", "n_patterns", "n_parents", "n_fires")}


FRESH_INSTANTS = [
    ("EXPLGRAPH_FAULT_AT", "features.batch@1"),
    ("EXPLGRAPH_FAULT_AT", "features.batch@2"),
    ("EXPLGRAPH_FAULT_AT", "features.commit"),
    ("EXPLGRAPH_FAULT_AT", "learn.iteration@1"),
    ("EXPLGRAPH_FAULT_AT", "learn.checkpoint@1"),
    ("EXPLGRAPH_FAULT_AT", "learn.iteration@2"),
    ("EXPLGRAPH_FAULT_AT", "learn.checkpoint@2"),
    ("EXPLGRAPH_FAULT_AT", "mine.write"),
    ("FAULT_KILL_WRITE", "1"),
    ("FAULT_KILL_WRITE", "5"),
]
REPLACE_INSTANTS = [
    ("FAULT_KILL_WRITE", "1"),
    ("FAULT_KILL_WRITE", "3"),
    ("FAULT_KILL_WRITE", "8"),
    ("FAULT_KILL_WRITE", "12"),
]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 17 toy mines; minutes each on a loaded machine
def test_mine_killed_at_every_stage_resumes_to_the_uninterrupted_graph(
    birds: Path, tmp_path: Path
) -> None:
    store_spec = str(tmp_path / "store")
    reference_store = str(tmp_path / "reference-store")
    clean = _mine(reference_store, birds, tmp_path / "reference-cache")
    assert clean.returncode == 0, clean.stderr
    expected = _counts(reference_store)

    cache = tmp_path / "cache"
    for variable, value in FRESH_INSTANTS:
        done = _mine(store_spec, birds, cache, **{variable: value})
        assert killed(done), f"{value}: exit {done.returncode}\n{done.stderr[-600:]}"
        row = models(store_spec).get(MODEL)  # opens read-only right after the kill
        assert row is None or row["status"] != "complete", (value, row)
    done = _mine(store_spec, birds, cache)
    assert done.returncode == 0, done.stderr
    assert_sound(store_spec, {MODEL: expected})

    failures = []
    for variable, value in REPLACE_INSTANTS:  # mine --force: the old copy must survive a kill
        done = _mine(store_spec, birds, cache, "--force", **{variable: value})
        assert killed(done), f"{value}: exit {done.returncode}\n{done.stderr[-600:]}"
        row = models(store_spec).get(MODEL)
        if row is None or row["status"] != "complete" or _counts(store_spec) != expected:
            failures.append(
                f"replace killed at write {value}: {row}, orphans {orphans(store_spec)}"
            )
        done = _mine(store_spec, birds, cache, "--force")
        if done.returncode != 0:
            failures.append(f"re-mine after the kill at {value}: {done.stderr.strip()[-300:]}")
            continue
        assert_sound(store_spec, {MODEL: expected})
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_ctrl_c_during_learning_exits_130_and_leaves_no_complete_model(
    birds: Path, tmp_path: Path
) -> None:
    spec, cache = str(tmp_path / "store"), tmp_path / "cache"
    done = _mine(
        spec, birds, cache, EXPLGRAPH_FAULT_AT="learn.iteration@1", EXPLGRAPH_FAULT_SIGNAL="INT"
    )
    assert done.returncode == 130, done.stderr
    assert "interrupted" in one_line_error(done)
    if Path(spec).exists():
        row = models(spec).get(MODEL)
        assert row is None or row["status"] != "complete"
    done = _mine(spec, birds, cache)
    assert done.returncode == 0, done.stderr
    assert_sound(spec, {MODEL: _counts(spec)})
