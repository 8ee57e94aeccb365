"""kill -9 at every instant of a model write and of a model replacement, on every engine.

A replacement (``mine --force``, a re-mine of the same id) killed at any instant must leave the
old complete copy or the new one — never neither, never pieces of both — plus nothing a
read-only open or the next write trips over. Issue 12 item 1: on the code before the atomic
replace, a kill after the delete left Patterns and FIRES without their Model.
"""

from __future__ import annotations

import pytest

from tests.faults.runner import instants, killed, run_child, write_primitives
from tests.faults.storecheck import assert_sound, expected_counts, models, orphans, tiny_model
from tests.helpers.stores import open_store

MODEL = "victim"
OLD, NEW = expected_counts(tiny_model(MODEL, seed=0)), expected_counts(tiny_model(MODEL, seed=1))
assert OLD != NEW  # the two copies can be told apart by their counts

_COUNTS: dict[tuple[str, str], int] = {}


def _write(spec: str, seed: int) -> None:
    with open_store(spec) as store:
        store.write_model(tiny_model(MODEL, seed=seed))


def _replacement_instants(spec: str, engine: str) -> list[int]:
    key = (engine, "replace")
    if key not in _COUNTS:
        counting = _fresh(spec, 0)
        _write(counting, 0)
        _COUNTS[key] = write_primitives("write", counting, MODEL, "1")
    return instants(_COUNTS[key])


def _engine(spec: str) -> str:
    return "bolt" if "://" in spec else "ladybug"


def _fresh(spec: str, point: int) -> str:
    """An empty store for one instant: a new folder, or the Bolt database wiped."""
    if _engine(spec) == "ladybug":
        return f"{spec}-{point}"
    with open_store(spec) as store:
        store.query("MATCH (n) DETACH DELETE n", write=True)
    return spec


def _after_kill(spec: str, point: int, allowed: tuple[dict[str, int], ...]) -> list[str]:
    """What is wrong with the store right after a kill, and after the next (recovering) write."""
    problems = []
    try:
        row = models(spec).get(MODEL)  # must open read-only right after the kill
        state = None if row is None else (row["status"], {k: row[k] for k in OLD})
        left = orphans(spec)
        if _engine(spec) == "bolt" and set(left) == {"Image"}:
            # A Bolt write is many transactions: a kill between a staged copy's Image nodes and
            # their FIRES edges leaves unused images. Issue 12 allows garbage that store info
            # reports and repair removes; anything else stays a failure.
            with open_store(spec) as store:
                reported = store.garbage()["orphans"].get("Image")
                store.repair()
            if reported != left["Image"]:
                problems.append(f"instant {point}: unused images {left} not reported ({reported})")
            left = orphans(spec)
        if state not in [("complete", counts) for counts in allowed] or left:
            problems.append(f"instant {point}: after the kill model {state}, orphans {left}")
    except Exception as error:  # collected: every instant is reported, not only the first
        problems.append(f"instant {point}: after the kill: {type(error).__name__}: {error}")
    try:
        _write(spec, 1)  # the next write recovers whatever was left
        assert_sound(spec, {MODEL: NEW})
    except Exception as error:
        problems.append(f"instant {point}: recovery: {type(error).__name__}: {error}"[:400])
    return problems


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_replace_killed_at_every_instant_keeps_one_complete_copy(store_spec: str) -> None:
    points = _replacement_instants(store_spec, _engine(store_spec))
    assert len(points) >= 10
    failures = []
    for point in points:
        spec = _fresh(store_spec, point)
        _write(spec, 0)
        done = run_child("write", spec, MODEL, "1", FAULT_KILL_WRITE=str(point))
        assert killed(done), f"instant {point}: {done.returncode} {done.stderr[-400:]}"
        failures += _after_kill(spec, point, (OLD, NEW))
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_first_write_killed_leaves_no_complete_model_and_recovers(store_spec: str) -> None:
    count = write_primitives("write", _fresh(store_spec, 0), MODEL, "0")
    failures = []
    for point in sorted({1, count // 2, count}):
        spec = _fresh(store_spec, point)
        done = run_child("write", spec, MODEL, "0", FAULT_KILL_WRITE=str(point))
        assert killed(done), done.stderr[-400:]
        row = models(spec).get(MODEL)
        assert row is None or row["status"] != "complete", row  # never a half model "complete"
        try:
            _write(spec, 0)
            assert_sound(spec, {MODEL: OLD})
        except Exception as error:
            failures.append(f"instant {point}: recovery: {type(error).__name__}: {error}"[:400])
    assert not failures, "\n".join(failures)
