"""kill -9 inside LadybugDB's commit and checkpoint, at instants chosen by watching its files.

Issue 22: a replace (``mine --force``) killed 0-0.35 s after ``graph.lbug.wal.checkpoint``
appeared came back with neither the old model nor the new one, in 7 of 7 tries, and nothing said
so (``tools/ladybug-repro`` holds the reproduction: the engine's recovery replays the logged
DELETEs and loses the un-logged COPY). Here the writer is a child process and the harness of
:mod:`tests.faults.enginewatch` watches the store folder (the WAL, the frozen WAL, the shadow
file, explgraph's writer lock, safety copy and marker) and kills it at instants spread over
every window in which one of those files exists, then opens the store the way the next command
does and checks, exactly: the old complete copy or the new one (a first write: none or the new
one), the other model intact, no orphans, no marker or safety copy left, and every undone write
in the log that ``explgraph store info`` prints.

Every write kind that commits on LadybugDB is swept: a replace, a first write, a delete, an
upsert of edges (``write_relationships``) and the backfill of the write-time answers. The
number of instants is bounded for CI (the replace: 10 that land inside the checkpoint window
plus 4 spread over the other files; the others: 3 each); ``FAULT_SWEEP_INSTANTS=N`` raises
every bound to N for a full sweep.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphstore.safety_copy import MARKER, SAFETY_COPY
from graphstore.writer_lock import LOCK_FILE
from tests.faults.enginewatch import Run, calibrate, schedule, start_child, watch, windows
from tests.faults.storecheck import (
    expected_counts,
    matches_frame,
    orphans_in,
    sized_model,
    state_of,
    tiny_model,
)
from tests.helpers.stores import open_store

MODEL, OTHER = "m", "other"
OLD = expected_counts(sized_model(MODEL, seed=0))
NEW = expected_counts(sized_model(MODEL, seed=1))
OTHER_COUNTS = expected_counts(tiny_model(OTHER))
CHECKPOINT = "graph.lbug.wal.checkpoint"
ENGINE_FILES = ("graph.lbug.wal", CHECKPOINT, "graph.lbug.shadow")
WATCHED = (*ENGINE_FILES, LOCK_FILE, f"{SAFETY_COPY}.tmp", MARKER)
#: kills that must land inside the engine's post-commit checkpoint of a replace (done-when)
CHECKPOINT_KILLS = 10

Judge = Callable[[Path, Run], tuple[str, list[str]]]


def _bound(default: int) -> int:
    return max(int(os.environ.get("FAULT_SWEEP_INSTANTS") or default), default)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Template stores: ``only-other`` (model ``other``), ``with-old`` (plus ``m``, seed 0),
    ``with-matches`` (plus MATCHES edges among m's patterns) and ``aged`` (``m`` without its
    write-time answers, as an older version wrote it)."""
    root = tmp_path_factory.mktemp("engine-kills")
    with open_store(str(root / "only-other")) as store:
        store.write_model(tiny_model(OTHER))
    shutil.copytree(root / "only-other", root / "with-old")
    with open_store(str(root / "with-old")) as store:
        store.write_model(sized_model(MODEL, seed=0))
    shutil.copytree(root / "with-old", root / "with-matches")
    with open_store(str(root / "with-matches")) as store:
        store.write_relationships("MATCHES", matches_frame(store, MODEL, 0))
    shutil.copytree(root / "with-old", root / "aged")
    with open_store(str(root / "aged")) as store:
        for derived in ("RANKED_CHILD", "TOP_PATH", "FLAGGED"):
            store.query(f"MATCH ()-[e:{derived}]->() DELETE e", write=True)
        store.query("MATCH (m:Model) SET m.precomputed = NULL", write=True)
    for name in ("only-other", "with-old", "with-matches", "aged"):
        (root / name / LOCK_FILE).unlink(missing_ok=True)  # so that its appearance is seen
    return root


def _sweep(
    template: Path, work: Path, args: tuple[str, ...], plan: list[tuple[str, float]], judge: Judge
) -> list[tuple[str, float, Run, str, list[str]]]:
    """Kill the child ``args`` (``{store}`` stands for a fresh copy of ``template``) at each
    instant of ``plan`` and judge what is left."""
    rows = []
    for index, (trigger, delay) in enumerate(plan):
        folder = work / f"kill{index}"
        shutil.copytree(template, folder)
        run = watch(start_child(*(str(folder) if a == "{store}" else a for a in args)), folder,
                    trigger, delay)  # fmt: skip
        state, problems = judge(folder, run)
        rows.append((trigger, delay, run, state, problems))
        shutil.rmtree(folder, ignore_errors=True)
    print(_table(rows))
    return rows


def _table(rows: list[tuple[str, float, Run, str, list[str]]]) -> str:
    lines = ["trigger                                         delay   killed  last mark -> state"]
    for trigger, delay, run, state, problems in rows:
        inside = "+".join(n.rsplit(".", 1)[-1] for n in sorted(run.at_kill) if n in ENGINE_FILES)
        lines.append(
            f"{trigger:46s} {delay:6.3f}s  {'yes' if run.killed else 'no ':3s} "
            f"[{inside or '-'}]  {run.last_mark():22s} -> {state} {'; '.join(problems)}"
        )
    return "\n".join(lines)


def _plan(template: Path, work: Path, args: tuple[str, ...], files: tuple[str, ...], n: int):  # type: ignore[no-untyped-def]
    folder = work / "calibration"
    shutil.copytree(template, folder)
    run = calibrate(*(str(folder) if a == "{store}" else a for a in args), folder=folder)
    shutil.rmtree(folder, ignore_errors=True)
    return schedule(windows(run, files, ()), n), run


def _look(folder: Path) -> tuple[dict[str, dict[str, Any]], dict[str, int], list[str]]:
    """One read-only open, as the next command's (it undoes an interrupted write): the models,
    the orphans and the log of undone writes."""
    with open_store(str(folder), read_only=True) as store:
        listed = {row["model_id"]: row for row in store.list_models()}
        return listed, orphans_in(store), store.recoveries()


def _common_problems(folder: Path, run: Run, state: str, look: Any) -> list[str]:
    """Orphans, the other model, files left behind, an undo that was not logged."""
    listed, left_orphans, undone = look
    problems = []
    other = state_of(listed.get(OTHER), None, OTHER_COUNTS)
    if other != "new":
        problems.append(f"other model damaged: {other}")
    if left_orphans:
        problems.append(f"orphans {left_orphans}")
    left = [n for n in (MARKER, SAFETY_COPY, f"{SAFETY_COPY}.tmp") if (folder / n).exists()]
    if left:
        problems.append(f"left after the next open: {left}")
    if run.killed and MARKER in run.at_kill and state == "old" and not undone:
        problems.append("the write was undone but nothing says so")
    return problems


def _judge_model(allowed: tuple[str, ...]) -> Judge:
    def judge(folder: Path, run: Run) -> tuple[str, list[str]]:
        look = _look(folder)
        state = state_of(look[0].get(MODEL), OLD, NEW)
        problems = [] if state in allowed else [f"model {state}"]
        return state, problems + _common_problems(folder, run, state, look)

    return judge


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_replace_killed_inside_the_engine_keeps_one_complete_copy(
    stores: Path, tmp_path: Path
) -> None:
    args = ("write-sized", "{store}", MODEL, "1")
    template = stores / "with-old"
    in_checkpoint, clean = _plan(template, tmp_path, args, (CHECKPOINT,), CHECKPOINT_KILLS)
    assert in_checkpoint, f"no {CHECKPOINT} in an un-killed replace: {clean.events}"
    rest = tuple(f for f in WATCHED if f != CHECKPOINT)
    others, _ = _plan(template, tmp_path, args, rest, _bound(4))
    judge = _judge_model(("old", "new"))
    rows = _sweep(template, tmp_path, args, in_checkpoint, judge)
    landed = sum(1 for *_, run, _, _ in rows if run.killed and CHECKPOINT in run.at_kill)
    extra = 0
    while landed < _bound(CHECKPOINT_KILLS) and extra < 2 * CHECKPOINT_KILLS:
        # the machine's load moves the window: retry early in it until enough kills land
        trigger, delay = in_checkpoint[extra % len(in_checkpoint)]
        more = _sweep(template, tmp_path, args, [(trigger, delay / 2)], judge)
        rows += more
        landed += sum(1 for *_, run, _, _ in more if run.killed and CHECKPOINT in run.at_kill)
        extra += 1
    rows += _sweep(template, tmp_path, args, others, judge)
    failures = [row for row in rows if row[4]]
    assert not failures, _table(failures)
    assert landed >= CHECKPOINT_KILLS, f"only {landed} kills inside the checkpoint\n{_table(rows)}"
    assert {state for *_, state, _ in rows} <= {"old", "new"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_first_write_killed_inside_the_engine_leaves_none_or_the_new_copy(
    stores: Path, tmp_path: Path
) -> None:
    args = ("write-sized", "{store}", MODEL, "1")
    plan, _ = _plan(stores / "only-other", tmp_path, args, WATCHED, _bound(3))
    rows = _sweep(stores / "only-other", tmp_path, args, plan, _judge_model(("absent", "new")))
    assert not [row for row in rows if row[4]], _table(rows)
    assert sum(1 for *_, run, _, _ in rows if run.killed) >= 2, _table(rows)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_delete_killed_inside_the_engine_leaves_the_model_or_nothing(
    stores: Path, tmp_path: Path
) -> None:
    args = ("delete", "{store}", MODEL)
    plan, _ = _plan(stores / "with-old", tmp_path, args, WATCHED, _bound(3))
    rows = _sweep(stores / "with-old", tmp_path, args, plan, _judge_model(("old", "absent")))
    assert not [row for row in rows if row[4]], _table(rows)
    assert sum(1 for *_, run, _, _ in rows if run.killed) >= 2, _table(rows)


def _matches_state(spec: str) -> str:
    with open_store(spec, read_only=True) as store:
        rows = store.query(
            "MATCH (:Pattern)-[e:MATCHES]->(:Pattern) RETURN e.similarity AS s, count(*) AS n"
        )
    found = {float(row["s"]): int(row["n"]) for row in rows}
    with open_store(spec, read_only=True) as store:
        n_patterns = store.describe_model(MODEL)["n_patterns"]
    if found == {0.0: 8 * n_patterns}:
        return "old"
    if found == {1.0: 12 * n_patterns}:
        return "new"
    return f"NEITHER ({found})"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_edge_upsert_killed_inside_the_engine_keeps_the_old_or_the_new_edges(
    stores: Path, tmp_path: Path
) -> None:
    def judge(folder: Path, run: Run) -> tuple[str, list[str]]:
        look = _look(folder)
        state = _matches_state(str(folder))
        problems = [] if state in ("old", "new") else [f"MATCHES {state}"]
        if state_of(look[0].get(MODEL), OLD, NEW) != "old":
            problems.append(f"model {state_of(look[0].get(MODEL), OLD, NEW)}")
        return state, problems + _common_problems(folder, run, state, look)

    args = ("upsert", "{store}", MODEL, "1")
    plan, _ = _plan(stores / "with-matches", tmp_path, args, WATCHED, _bound(3))
    rows = _sweep(stores / "with-matches", tmp_path, args, plan, judge)
    assert not [row for row in rows if row[4]], _table(rows)
    assert sum(1 for *_, run, _, _ in rows if run.killed) >= 2, _table(rows)


def _backfill_state(spec: str, expected: dict[str, int]) -> str:
    with open_store(spec, read_only=True) as store:
        marked = store.query("MATCH (m:Model {model_id: $id}) RETURN m.precomputed AS v",
                             {"id": MODEL})[0]["v"]  # fmt: skip
        edges = {
            derived: int(store.query(f"MATCH ()-[e:{derived}]->() RETURN count(e) AS c")[0]["c"])
            for derived in expected
        }
    if marked is None and not any(edges.values()):
        return "old"
    if marked is not None and edges == expected:
        return "new"
    return f"NEITHER (precomputed {marked}, edges {edges})"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_backfill_killed_inside_the_engine_marks_a_model_only_with_its_answers(
    stores: Path, tmp_path: Path
) -> None:
    with open_store(str(stores / "with-old"), read_only=True) as store:
        expected = {
            derived: int(store.query(f"MATCH ()-[e:{derived}]->() RETURN count(e) AS c")[0]["c"])
            for derived in ("RANKED_CHILD", "TOP_PATH")
        }

    def judge(folder: Path, run: Run) -> tuple[str, list[str]]:
        look = _look(folder)  # a read-only open completes an undone backfill again
        state = _backfill_state(str(folder), expected)
        problems = [] if state in ("old", "new") else [f"backfill {state}"]
        return state, problems + _common_problems(folder, run, state, look)

    args = ("open", "{store}")
    plan, _ = _plan(stores / "aged", tmp_path, args, WATCHED, _bound(3))
    rows = _sweep(stores / "aged", tmp_path, args, plan, judge)
    assert not [row for row in rows if row[4]], _table(rows)
    assert sum(1 for *_, run, _, _ in rows if run.killed) >= 2, _table(rows)
