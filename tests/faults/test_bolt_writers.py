"""One writer per model on a Bolt server, and Ctrl-C during a Bolt write (issue 22, item 2).

Two replacing writers of one model used to share one staging copy: a reader saw a ``complete``
model with 0 layers and thousands of orphan patterns, and one writer died with a raw server
error. Now a writer takes the model's lease (:mod:`graphstore.bolt_lease`) before it stages;
a second writer is refused in one line. Ctrl-C during a Bolt write said ``PackStream map key
must be a string`` and exited 1; now it exits 130 with ``interrupted`` and the old model stays.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from explgraph.core.errors import ExplGraphError
from graphstore import bolt_lease
from graphstore.bolt_engine import BoltStore
from tests.faults.enginewatch import start_child, watch
from tests.faults.runner import child_env, explgraph, one_line_error, run_child
from tests.faults.storecheck import expected_counts, orphans, state_of, tiny_model
from tests.helpers.stores import open_store

MODEL = "m"
pytestmark = pytest.mark.bolt


def _smoke_counts(spec: str, channels: int) -> dict[str, int]:
    from graphstore.testing.synthetic import synthetic_records

    return expected_counts(synthetic_records(MODEL, channels=channels, n_images=20,
                                             fires_per_image=50))  # fmt: skip


def test_a_second_writer_of_a_model_is_refused_in_one_line(bolt_store_spec: str) -> None:
    assert run_child("write", bolt_store_spec, MODEL, "0").returncode == 0
    with open_store(bolt_store_spec) as holder:
        assert isinstance(holder, BoltStore)
        with holder._model_lock(MODEL):
            done = explgraph("--store", bolt_store_spec, "delete", "--yes", MODEL)
            assert done.returncode == 1
            line = one_line_error(done)
            assert f"model {MODEL!r} is being written by process " in line, line
            assert "lease expires in" in line
            writer = run_child("write", bolt_store_spec, MODEL, "1")
            assert writer.returncode != 0 and "StoreUnavailable" in writer.stderr
            other = run_child("write", bolt_store_spec, "other", "0")  # another model: free
            assert other.returncode == 0, other.stderr[-600:]
            info = explgraph("--store", bolt_store_spec, "store", "info")
            assert f"writers: {MODEL}: process " in info.stdout, info.stdout
    # released: the write goes through at once, and nothing of the refused ones is left
    assert run_child("write", bolt_store_spec, MODEL, "1").returncode == 0
    with open_store(bolt_store_spec, read_only=True) as store:
        listed = {row["model_id"]: row for row in store.list_models()}
        assert store.query(f"MATCH (l:{bolt_lease.LABEL}) RETURN count(l) AS c")[0]["c"] == 0
    assert state_of(listed[MODEL], None, expected_counts(tiny_model(MODEL, seed=1))) == "new"
    assert not orphans(bolt_store_spec)


def test_a_killed_writer_does_not_block_the_model(bolt_store_spec: str) -> None:
    assert run_child("write", bolt_store_spec, MODEL, "0").returncode == 0
    run = watch(start_child("write", bolt_store_spec, MODEL, "1"), None, "mark:write:batch@2")
    assert run.killed
    done = run_child("write", bolt_store_spec, MODEL, "1")  # its lease names a dead process
    assert done.returncode == 0, done.stderr[-600:]
    assert (
        state_of(
            {r["model_id"]: r for r in _listed(bolt_store_spec)}[MODEL],
            None,
            expected_counts(tiny_model(MODEL, seed=1)),
        )
        == "new"
    )


def _listed(spec: str) -> list[dict[str, object]]:
    with open_store(spec, read_only=True) as store:
        return store.list_models()


def _smoke(spec: str, channels: int) -> list[str]:
    """The arguments of ``explgraph store smoke``: a synthetic model written through the CLI."""
    return ["--quiet", "--store", spec, "store", "smoke", "--model-id", MODEL,
            "--channels", str(channels)]  # fmt: skip


@pytest.mark.slow
def test_two_replacing_writers_one_refused_readers_never_see_a_half_model(
    bolt_store_spec: str,
) -> None:
    old, new = _smoke_counts(bolt_store_spec, 6), _smoke_counts(bolt_store_spec, 7)
    assert explgraph(*_smoke(bolt_store_spec, 6)).returncode == 0
    seen: list[str] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                for row in _listed(bolt_store_spec):
                    seen.append(state_of(row, old, new))
            except ExplGraphError as error:  # a clear refusal is fine, a half model is not
                seen.append(f"refused: {error}")
            time.sleep(0.02)

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.faults.child", "cli", *_smoke(bolt_store_spec, 7)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for _ in range(2)
    ]
    outcomes = [(w.wait(timeout=600), w.stderr.read() if w.stderr else "") for w in writers]
    stop.set()
    reader.join(timeout=60)
    codes = sorted(code for code, _ in outcomes)
    assert codes in ([0, 0], [0, 1]), outcomes  # both in turn, or the second refused
    for code, err in outcomes:
        if code == 1:
            assert len(err.strip().splitlines()) == 1 and "is being written by" in err, err
    assert seen and all(state in ("old", "new") for state in seen), sorted(set(seen))
    assert state_of({r["model_id"]: r for r in _listed(bolt_store_spec)}[MODEL], old, new) == "new"
    assert not orphans(bolt_store_spec)


#: Where the Ctrl-C lands: (the fault point, the time it passes it, seconds after its mark). The
#: child pauses there for PAUSE_S (FAULT_PAUSE_AT), so the signal lands inside the write even on
#: a fast idle machine, where the whole write can end before the parent sees a mark.
CTRL_C_AT = [("write:batch", 1, 0.0), ("write:batch", 2, 0.03), ("replace:before-switch", 1, 0.12)]
PAUSE_S = "3"


@pytest.mark.parametrize(("point", "nth", "delay"), CTRL_C_AT)
def test_ctrl_c_during_a_bolt_write_exits_130_and_keeps_the_old_model(
    bolt_store_spec: str, point: str, nth: int, delay: float
) -> None:
    old = _smoke_counts(bolt_store_spec, 6)
    assert explgraph(*_smoke(bolt_store_spec, 6)).returncode == 0
    pause = {"FAULT_PAUSE_AT": f"{point}@{nth}", "FAULT_PAUSE_S": PAUSE_S}
    child = start_child("cli", *_smoke(bolt_store_spec, 7), **pause)
    run = watch(child, None, f"mark:{point}@{nth}", delay, sig=signal.SIGINT)
    assert run.killed, run.stderr[-600:]
    assert run.killed_at is not None
    before = [name for stamp, name in run.marks if stamp <= run.killed_at]
    assert before[-1] == point, run.marks  # it landed in the pause: no later fault point first
    assert run.returncode == 130, (run.returncode, run.stderr[-1200:])
    assert run.stderr.strip() == "interrupted", run.stderr[-1200:]
    listed = {r["model_id"]: r for r in _listed(bolt_store_spec)}
    assert state_of(listed[MODEL], old, _smoke_counts(bolt_store_spec, 7)) == "old"
    again = explgraph(*_smoke(bolt_store_spec, 7))  # the lease was released: no wait
    assert again.returncode == 0, again.stderr[-600:]
