"""Crashes during a model replace or delete: one complete copy survives, no garbage after repair.

A child process replaces (or deletes) model ``m1`` and is ended by ``os._exit`` at one of the
store writer's crash points (``EXPLGRAPH_FAULT_AT``, :mod:`explgraph.core.faults`). The parent then
checks, on every engine: a read-only open works at once; after ``repair`` (or the next write)
there is exactly one complete copy — the old one if the crash came before the switch, the new
one after it — and no staged copy, unfinished model or orphan.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from explgraph.core.faults import FAULT_ENV, FAULT_EXIT_CODE, FAULT_POINTS
from graphstore import GraphRecords
from tests.helpers.stores import open_store

Build = Callable[..., GraphRecords]
REPO = Path(__file__).resolve().parents[2]
OLD_CHANNELS, NEW_CHANNELS = 3, 4
NO_GARBAGE: dict[str, dict[str, object]] = {"staging": {}, "unfinished": {}, "orphans": {}}

_CHILD = """
import sys
from tests.helpers.stores import open_store, tiny_records

spec, action, channels = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open_store(spec) as store:
    if action == "write":
        store.write_model(tiny_records("m1", channels=channels))
    else:
        store.delete_model("m1")
print("finished", flush=True)
"""

# crash point -> which copy must survive: "old", "new" (replace) or "gone" (delete)
_REPLACE_POINTS = {
    "write:model-node": "old",
    "write:batch@3": "old",
    "write:nodes": "old",
    "replace:before-switch": "old",
    "replace:switch-marked": "new",
    "replace:old-deleted": "new",  # Bolt only: LadybugDB never reaches it
    "replace:renaming@2": "new",  # Bolt only
    "replace:done": "new",
}


def _run_child(spec: str, action: str, channels: int, point: str) -> subprocess.CompletedProcess:
    env = {**os.environ, FAULT_ENV: point, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _CHILD, spec, action, str(channels)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def _shape(row: dict) -> tuple[int, ...]:
    return tuple(
        int(row[k]) for k in ("n_layers", "n_filters", "n_patterns", "n_parents", "n_fires")
    )


def _expected_shape(spec: str, tiny_records: Build, channels: int, tmp_path: Path) -> tuple:
    """Counts of a clean copy, written to a scratch embedded store."""
    with open_store(str(tmp_path / f"clean{channels}")) as clean:
        clean.write_model(tiny_records("m1", channels=channels))
        [row] = clean.list_models()
    return _shape(row)


def _reached(point: str, store_engine: str) -> bool:
    return not (store_engine == "ladybug" and point.startswith(("replace:old", "replace:renaming")))


def test_every_crash_point_is_documented() -> None:
    for point in _REPLACE_POINTS:
        assert point.partition("@")[0] in FAULT_POINTS


@pytest.mark.parametrize("point", list(_REPLACE_POINTS))
def test_crash_during_replace_leaves_one_complete_copy(
    store_spec: str, tiny_records: Build, tmp_path: Path, point: str
) -> None:
    with open_store(store_spec) as store:
        engine = store.engine
        store.write_model(tiny_records("m1", channels=OLD_CHANNELS))
    if not _reached(point, engine):
        pytest.skip(f"{engine} replaces in one transaction and never reaches {point}")
    old = _expected_shape(store_spec, tiny_records, OLD_CHANNELS, tmp_path)
    new = _expected_shape(store_spec, tiny_records, NEW_CHANNELS, tmp_path)

    child = _run_child(store_spec, "write", NEW_CHANNELS, point)
    assert child.returncode == FAULT_EXIT_CODE, child.stderr[-2000:]

    with open_store(store_spec, read_only=True) as reader:  # works at once, no --write advice
        reader.list_models()
    with open_store(store_spec) as store:
        store.repair()
        assert store.garbage() == NO_GARBAGE
    with open_store(store_spec, read_only=True) as reader:
        [model] = reader.list_models()
        ids = reader.query("MATCH (p:Pattern) RETURN p.pattern_id AS id")
    assert model["status"] == "complete"
    assert _shape(model) == (old if _REPLACE_POINTS[point] == "old" else new)
    assert all(row["id"].startswith("m1/") for row in ids)


@pytest.mark.parametrize("point", ["write:nodes", "replace:switch-marked"])
def test_the_next_write_cleans_up_after_a_crash(
    store_spec: str, tiny_records: Build, tmp_path: Path, point: str
) -> None:
    with open_store(store_spec) as store:
        store.write_model(tiny_records("m1", channels=OLD_CHANNELS))
    assert _run_child(store_spec, "write", NEW_CHANNELS, point).returncode == FAULT_EXIT_CODE

    with open_store(store_spec) as store:
        store.write_model(tiny_records("m1", channels=2))
        assert store.garbage() == NO_GARBAGE
        [model] = store.list_models()
    assert _shape(model) == _expected_shape(store_spec, tiny_records, 2, tmp_path)


@pytest.mark.parametrize("point", ["delete:marked", "delete:partial"])
def test_crash_during_delete_leaves_no_orphans(
    store_spec: str, tiny_records: Build, tmp_path: Path, point: str
) -> None:
    with open_store(store_spec) as store:
        store.write_model(tiny_records("m1", channels=OLD_CHANNELS))
        store.write_model(tiny_records("m2", channels=2))
    old = _expected_shape(store_spec, tiny_records, OLD_CHANNELS, tmp_path)

    child = _run_child(store_spec, "delete", 0, point)
    assert child.returncode == FAULT_EXIT_CODE, child.stderr[-2000:]

    with open_store(store_spec, read_only=True) as reader:
        survivors = {row["model_id"]: row for row in reader.list_models()}
    assert "m2" in survivors
    if "m1" in survivors:  # either untouched (LadybugDB: rolled back) or marked 'deleting'
        assert survivors["m1"]["status"] == "deleting" or _shape(survivors["m1"]) == old
    with open_store(store_spec) as store:
        store.repair()
        assert store.garbage() == NO_GARBAGE
        models = {row["model_id"]: row for row in store.list_models()}
    assert models["m2"]["status"] == "complete"
    assert set(models) in ({"m2"}, {"m1", "m2"})
    if "m1" in models:
        assert models["m1"]["status"] == "complete" and _shape(models["m1"]) == old


def test_orphans_of_older_versions_are_reported_and_repaired(
    store_spec: str, tiny_records: Build
) -> None:
    """What the previous code left after a kill inside ``delete_model``: Patterns, no Model."""
    with open_store(store_spec) as store:
        store.write_model(tiny_records("m1"))
        store.query("MATCH (n:Model) DETACH DELETE n", write=True)
        store.query("MATCH (n:Layer) DETACH DELETE n", write=True)
        assert store.list_models() == []
        found = store.garbage()
        assert found["orphans"]["Pattern"] == len(tiny_records("m1").patterns)
        assert "orphan Pattern" in store.info()["leftovers"]
        store.repair()
        assert store.garbage() == NO_GARBAGE
        assert store.query("MATCH (n:Pattern) RETURN count(n) AS c") == [{"c": 0}]
        store.write_model(tiny_records("m1"))  # no duplicate-key error
        assert [m["status"] for m in store.list_models()] == ["complete"]
