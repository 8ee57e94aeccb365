"""Candidate replace designs for explgraph on LadybugDB, each killed around every checkpoint.

Uses the store, data and counts of ``repro.py`` (same folder). For each design it

1. runs the replace once un-killed, watching the store folder: the file windows (each
   appearance of ``graph.lbug.wal``, ``.wal.checkpoint``, ``.shadow`` and the design's own
   files, with how long it lived) and the time the design costs;
2. kills the writer with SIGKILL at ``--instants`` instants spread over those windows (at least
   one per window, the rest by window length), then runs the design's open-time recovery in a
   fresh process and counts: ``old`` / ``new`` (complete, exact counts, and nothing staged or
   backed up left behind), ``NEITHER``, or ``OPEN-FAILED`` (with what a lenient reopen,
   ``throw_on_wal_replay_failure=False``, finds);
3. optionally (``--disk-full-mb``, root) runs it un-killed on small tmpfs mounts, then gives the
   mount room and recovers.

Designs (``--designs``, comma-separated; default all):

- ``baseline``: what explgraph does: one transaction (DETACH DELETE old, COPY new), COMMIT.
- ``checkpoint-around`` (a): ``CHECKPOINT`` before BEGIN and right after COMMIT.
- ``no-auto-checkpoint`` (d): ``auto_checkpoint=False`` and a huge ``checkpoint_threshold``, an
  explicit ``CHECKPOINT`` after COMMIT.
- ``split``: two transactions: DELETE old (WAL-logged only), then COPY new (COPY only).
- ``no-copy`` (e): one transaction of plain DML: DETACH DELETE old, then ``UNWIND $rows AS r
  CREATE ...`` in batches of 5,000 (relationships: two MATCH clauses, then CREATE): every row
  is in the WAL, nothing depends on the post-commit checkpoint.
- ``staging`` (b): COPY the new copy under a staging model id in a COPY-only transaction
  (checkpointed by COMMIT), then one switch transaction of plain DML (delete old, create the
  Model node, relink, SET model_id); recovery deletes an unswitched staging copy. LadybugDB
  cannot SET a primary key, so staged nodes keep their staging primary keys.
- ``file-backup`` (c): CHECKPOINT, copy ``graph.lbug`` to a backup file (fsync), write a marker
  (fsync), run the baseline transaction, verify the counts, CHECKPOINT, drop marker then backup.
  Open-time recovery, before the engine opens the folder: marker present -> delete the WAL,
  frozen WAL and shadow files, rename the backup over ``graph.lbug``, drop the marker.
  A checkpoint error in the writer (disk full) restores at once.
- ``model-backup`` (c'): export the old model's rows to Arrow IPC files (fsync) and a marker,
  run the baseline transaction, verify, drop marker and files. Recovery: marker present and
  the model neither old- nor new-complete -> delete its leftovers (a DML-only transaction), COPY
  the old rows back (a COPY-only transaction), verify, drop the marker.

Run ``python candidates.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import repro

DB = repro.DB_FILE
MODEL, STAGING = repro.MODEL, f"{repro.MODEL}~staging"
BACKUP = f"{DB}.explgraph-backup"
MARKER = "explgraph-replace.json"
MODEL_BACKUP = "explgraph-replace-backup"
ENGINE_FILES = (f"{DB}.wal", f"{DB}.wal.checkpoint", f"{DB}.shadow")
WATCHED = (*ENGINE_FILES, f"{BACKUP}.tmp", f"{MARKER}.tmp", f"{MODEL_BACKUP}.tmp")
DESIGNS = (
    "baseline",
    "checkpoint-around",
    "no-auto-checkpoint",
    "split",
    "no-copy",
    "staging",
    "file-backup",
    "model-backup",
)
SETTINGS: dict[str, dict[str, Any]] = {
    "no-auto-checkpoint": {"auto_checkpoint": False, "checkpoint_threshold": 1 << 40},
}


# ------------------------------------------------------------------------------------------
# durable file helpers


def crash_point(step: int) -> None:
    """SIGKILL this process at recovery step ``step`` when CANDIDATES_CRASH_AT says so (the
    double-fault test: a crash during the recovery of a crash)."""
    if os.environ.get("CANDIDATES_CRASH_AT") == str(step):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    fsync_dir(path.parent)


# ------------------------------------------------------------------------------------------
# the designs: writer side


def replace_in_one_transaction(conn: Any, new: dict) -> None:
    conn.execute("BEGIN TRANSACTION")
    repro.delete_model(conn, MODEL)
    repro.copy_model(conn, new)
    conn.execute("COMMIT")


def write_baseline(folder: Path, conn: Any, new: dict) -> None:
    replace_in_one_transaction(conn, new)


def write_checkpoint_around(folder: Path, conn: Any, new: dict) -> None:
    conn.execute("CHECKPOINT")
    repro.mark("PRE-CHECKPOINTED")
    replace_in_one_transaction(conn, new)
    repro.mark("COMMITTED")
    conn.execute("CHECKPOINT")


def write_no_auto_checkpoint(folder: Path, conn: Any, new: dict) -> None:
    replace_in_one_transaction(conn, new)
    repro.mark("COMMITTED")
    conn.execute("CHECKPOINT")


KEYS = {
    "Model": "model_id",
    "Layer": "layer_id",
    "Filter": "filter_id",
    "Pattern": "pattern_id",
    "Image": "image_id",
}
ENDS = {
    "HAS_LAYER": ("Model", "Layer"),
    "HAS_FILTER": ("Layer", "Filter"),
    "HAS_PATTERN": ("Filter", "Pattern"),
    "PARENT": ("Pattern", "Pattern"),
    "FIRES": ("Image", "Pattern"),
}
BATCH = 5000


def write_no_copy(folder: Path, conn: Any, new: dict) -> None:
    """One transaction of plain DML: DETACH DELETE, then UNWIND ... CREATE in batches (every
    row in the WAL; no COPY)."""
    conn.execute("BEGIN TRANSACTION")
    repro.delete_model(conn, MODEL)
    for label in repro.NODE_ORDER:
        table = new[label]
        props = ", ".join(f"{name}: r.{name}" for name in table.column_names)
        rows = table.to_pylist()
        for start in range(0, len(rows), BATCH):
            conn.execute(
                f"UNWIND $rows AS r CREATE (:{label} {{{props}}})",
                {"rows": rows[start : start + BATCH]},
            )
    for rel in repro.REL_ORDER:
        table = new[rel].rename_columns(["src", "dst", *new[rel].column_names[2:]])
        props = ", ".join(f"{name}: r.{name}" for name in table.column_names[2:])
        (a, b), rows = ENDS[rel], table.to_pylist()
        for start in range(0, len(rows), BATCH):
            conn.execute(
                f"UNWIND $rows AS r MATCH (a:{a} {{{KEYS[a]}: r.src}}) "
                f"MATCH (b:{b} {{{KEYS[b]}: r.dst}}) CREATE (a)-[:{rel} {{{props}}}]->(b)",
                {"rows": rows[start : start + BATCH]},
            )
    conn.execute("COMMIT")


def write_split(folder: Path, conn: Any, new: dict) -> None:
    conn.execute("BEGIN TRANSACTION")
    repro.delete_model(conn, MODEL)
    conn.execute("COMMIT")
    repro.mark("DELETED")
    conn.execute("BEGIN TRANSACTION")
    repro.copy_model(conn, new)
    conn.execute("COMMIT")


def write_staging(folder: Path, conn: Any, new: dict, staged: dict) -> None:
    conn.execute("BEGIN TRANSACTION")
    repro.copy_model(conn, staged)
    conn.execute("COMMIT")  # COPY only: no WAL records; durable once its checkpoint commits
    repro.mark("STAGED")
    conn.execute("BEGIN TRANSACTION")
    switch(conn)
    conn.execute("COMMIT")  # plain DML only: all of it in the WAL


def switch(conn: Any) -> None:
    """Old copy out, staged copy in, as plain DML (the staged primary keys stay)."""
    ids = {"id": MODEL, "s": STAGING}
    repro.delete_model(conn, MODEL)
    conn.execute(
        "MATCH (s:Model {model_id: $s}) CREATE (:Model {model_id: $id, version: s.version, "
        "status: 'complete', n_patterns: s.n_patterns, n_fires: s.n_fires})",
        ids,
    )
    conn.execute(
        "MATCH (s:Model {model_id: $s})-[:HAS_LAYER]->(l:Layer) "
        "MATCH (m:Model {model_id: $id}) CREATE (m)-[:HAS_LAYER]->(l)",
        ids,
    )
    conn.execute("MATCH (s:Model {model_id: $s}) DETACH DELETE s", ids)
    for label in ("Layer", "Filter", "Pattern"):
        conn.execute(f"MATCH (n:{label}) WHERE n.model_id = $s SET n.model_id = $id", ids)
    conn.execute(
        "MATCH (:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $s SET f.model_id = $id", ids
    )


def write_file_backup(folder: Path, conn: Any, new: dict, db: Any, expected: dict) -> None:
    conn.execute("CHECKPOINT")
    leftovers = [name for name in ENGINE_FILES if (folder / name).exists()]
    if leftovers:
        raise RuntimeError(f"not clean after CHECKPOINT: {leftovers}")
    tmp = folder / f"{BACKUP}.tmp"
    try:
        shutil.copyfile(folder / DB, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, folder / BACKUP)
        fsync_dir(folder)
        write_json_durably(folder / MARKER, {"model": MODEL, "backup": BACKUP})
    except OSError as error:  # e.g. no space for the safety copy: nothing was changed
        with contextlib.suppress(OSError):
            remove_durably(tmp)
            remove_durably(folder / BACKUP)
        raise SystemExit(f"refused before any change: {error}") from None
    repro.mark("BACKED-UP")
    try:
        replace_in_one_transaction(conn, new)
        repro.mark("COMMITTED")
        if repro.count_model(conn, MODEL) != expected:
            raise RuntimeError("the new copy is not complete after COMMIT")
        conn.execute("CHECKPOINT")
    except RuntimeError as error:
        conn.close()
        db.close()
        restore_file_backup(folder)
        raise SystemExit(f"the replace failed ({str(error)[:120]}); old model restored") from None
    remove_durably(folder / MARKER)
    remove_durably(folder / BACKUP)


def restore_file_backup(folder: Path) -> str:
    """Open-time recovery (engine not open): undo an unfinished replace from the backup."""
    if not (folder / MARKER).exists():
        if (folder / BACKUP).exists():
            remove_durably(folder / BACKUP)  # a finished replace, or one that never started
        return "nothing to do"
    for name in ENGINE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    fsync_dir(folder)
    crash_point(1)
    if (folder / BACKUP).exists():
        os.replace(folder / BACKUP, folder / DB)
        fsync_dir(folder)
    crash_point(2)
    remove_durably(folder / MARKER)
    return "restored the backup"


MODEL_EXPORTS = {
    "Model": "MATCH (n:Model) WHERE n.model_id = $id RETURN n.model_id AS model_id, "
    "n.version AS version, n.status AS status, n.n_patterns AS n_patterns, "
    "n.n_fires AS n_fires",
    "Layer": "MATCH (n:Layer) WHERE n.model_id = $id RETURN n.layer_id AS layer_id, "
    "n.model_id AS model_id, n.name AS name, n.depth AS depth",
    "Filter": "MATCH (n:Filter) WHERE n.model_id = $id RETURN n.filter_id AS filter_id, "
    "n.model_id AS model_id, n.layer AS layer, n.idx AS idx",
    "Pattern": "MATCH (n:Pattern) WHERE n.model_id = $id RETURN n.pattern_id AS pattern_id, "
    "n.model_id AS model_id, n.layer AS layer, n.filter AS filter, n.idx AS idx, "
    "n.mu_x AS mu_x, n.mu_y AS mu_y, n.x AS x, n.y AS y, n.sigma AS sigma, "
    "n.mean_score AS mean_score, n.diagnosis AS diagnosis",
    "HAS_LAYER": "MATCH (a:Model)-[e:HAS_LAYER]->(b:Layer) WHERE a.model_id = $id "
    "RETURN a.model_id AS `from`, b.layer_id AS `to`",
    "HAS_FILTER": "MATCH (a:Layer)-[e:HAS_FILTER]->(b:Filter) WHERE a.model_id = $id "
    "RETURN a.layer_id AS `from`, b.filter_id AS `to`",
    "HAS_PATTERN": "MATCH (a:Filter)-[e:HAS_PATTERN]->(b:Pattern) WHERE a.model_id = $id "
    "RETURN a.filter_id AS `from`, b.pattern_id AS `to`",
    "PARENT": "MATCH (a:Pattern)-[e:PARENT]->(b:Pattern) WHERE a.model_id = $id "
    "RETURN a.pattern_id AS `from`, b.pattern_id AS `to`, e.dx AS dx, e.dy AS dy, "
    "e.sigma AS sigma, e.weight AS weight",
    "FIRES": "MATCH (a:Image)-[e:FIRES]->(b:Pattern) WHERE e.model_id = $id "
    "RETURN a.image_id AS `from`, b.pattern_id AS `to`, e.model_id AS model_id, e.x AS x, "
    "e.y AS y, e.score AS score, e.rank AS rank",
}


def write_model_backup(folder: Path, conn: Any, new: dict, old: dict, expected: dict) -> None:
    import pyarrow as pa

    tmp = folder / f"{MODEL_BACKUP}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, cypher in MODEL_EXPORTS.items():
        table = conn.execute(cypher, {"id": MODEL}).get_as_arrow()
        with (
            pa.OSFile(str(tmp / f"{name}.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as writer,
        ):
            writer.write_table(table)
        with open(tmp / f"{name}.arrow", "rb+") as handle:
            os.fsync(handle.fileno())
    fsync_dir(tmp)
    os.replace(tmp, folder / MODEL_BACKUP)
    fsync_dir(folder)
    write_json_durably(folder / MARKER, {"model": MODEL, "old": old, "new": expected})
    repro.mark("BACKED-UP")
    replace_in_one_transaction(conn, new)
    repro.mark("COMMITTED")
    if repro.count_model(conn, MODEL) != expected:
        raise SystemExit("the new copy is not complete after COMMIT; the next open restores")
    conn.execute("CHECKPOINT")
    remove_durably(folder / MARKER)
    remove_durably(folder / MODEL_BACKUP)


def restore_model_backup(folder: Path, conn: Any) -> str:
    """Open-time recovery (engine open): re-load the old model if neither copy is complete."""
    import pyarrow as pa

    marker = folder / MARKER
    if not marker.exists():
        if (folder / MODEL_BACKUP).exists():
            remove_durably(folder / MODEL_BACKUP)
        return "nothing to do"
    info = json.loads(marker.read_text())
    got = repro.count_model(conn, MODEL)
    if got in (info["old"], info["new"]):
        remove_durably(marker)
        remove_durably(folder / MODEL_BACKUP)
        return f"the {got['version']} copy is complete"
    conn.execute("BEGIN TRANSACTION")
    repro.delete_model(conn, MODEL)
    conn.execute("COMMIT")
    crash_point(1)
    conn.execute("BEGIN TRANSACTION")
    for name in (*repro.NODE_ORDER, *repro.REL_ORDER):
        with pa.memory_map(str(folder / MODEL_BACKUP / f"{name}.arrow")) as source:
            table = pa.ipc.open_file(source).read_all()
        if table.num_rows:
            conn.execute(f"COPY {name} FROM $t", {"t": table})
    conn.execute("COMMIT")
    crash_point(2)
    if repro.count_model(conn, MODEL) != info["old"]:
        raise RuntimeError("the restored old copy is not complete")
    remove_durably(marker)
    remove_durably(folder / MODEL_BACKUP)
    return "re-loaded the old copy from its export"


def restore_staging(conn: Any) -> str:
    rows = conn.execute(
        "MATCH (n:Pattern) WHERE n.model_id = $s RETURN count(n)", {"s": STAGING}
    ).get_all()
    model = conn.execute("MATCH (m:Model {model_id: $s}) RETURN count(m)", {"s": STAGING})
    if not rows[0][0] and not model.get_all()[0][0]:
        return "nothing to do"
    conn.execute("BEGIN TRANSACTION")
    repro.delete_model(conn, STAGING)
    conn.execute("COMMIT")
    return "deleted an unswitched staging copy"


# ------------------------------------------------------------------------------------------
# child processes


def child_write(args: argparse.Namespace) -> None:
    design, folder = args.design, Path(args.child_write)
    new = repro.model_tables(MODEL, "new", repro.new_sizes(args), args.images, seed=2)
    staged: dict = {}
    if design == "staging":
        staged = repro.model_tables(STAGING, "new", repro.new_sizes(args), args.images, seed=2)
    expected_new = repro.new_sizes(args).expected("new")
    repro.mark("START")
    db, conn = repro.open_db(folder, SETTINGS.get(design, {}))
    repro.mark("OPENED")
    writers: dict[str, Callable[[], None]] = {
        "baseline": lambda: write_baseline(folder, conn, new),
        "checkpoint-around": lambda: write_checkpoint_around(folder, conn, new),
        "no-auto-checkpoint": lambda: write_no_auto_checkpoint(folder, conn, new),
        "split": lambda: write_split(folder, conn, new),
        "no-copy": lambda: write_no_copy(folder, conn, new),
        "staging": lambda: write_staging(folder, conn, new, staged),
        "file-backup": lambda: write_file_backup(folder, conn, new, db, expected_new),
        "model-backup": lambda: write_model_backup(
            folder, conn, new, repro.old_sizes(args).expected("old"), expected_new
        ),
    }
    writers[design]()
    repro.mark("DONE")
    conn.close()
    db.close()
    repro.mark("CLOSED")


def child_recover(args: argparse.Namespace) -> None:
    design, folder = args.design, Path(args.child_recover)
    settings = json.loads(args.settings)
    note = "nothing to do"
    if design == "file-backup":
        note = restore_file_backup(folder)
    db, conn = repro.open_db(folder, settings)
    if design == "model-backup":
        note = restore_model_backup(folder, conn)
    elif design == "staging":
        note = restore_staging(conn)
    result: dict[str, Any] = {m: repro.count_model(conn, m) for m in (MODEL, repro.OTHER)}
    staged = conn.execute(
        "MATCH (n:Pattern) WHERE n.model_id = $s RETURN count(n)", {"s": STAGING}
    ).get_all()[0][0]
    conn.close()
    db.close()
    result["recovery"] = note
    result["leftovers"] = {
        "staged patterns": staged,
        "files": sorted(n for n in (MARKER, BACKUP, MODEL_BACKUP) if (folder / n).exists()),
    }
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------
# parent


def spawn(
    args: argparse.Namespace,
    mode: str,
    folder: Path,
    design: str,
    settings: str = "{}",
    crash_at: int = 0,
) -> subprocess.Popen:
    command = [sys.executable, os.path.abspath(__file__), mode, str(folder), "--design", design]
    command += ["--settings", settings, *repro.passthrough(args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CANDIDATES_CRASH_AT": str(crash_at)}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def recover(args: argparse.Namespace, folder: Path, design: str) -> dict[str, Any]:
    settings = json.dumps(SETTINGS.get(design, {}))
    result = run_recover(args, folder, design, settings)
    if "error" in result:
        lenient = {**SETTINGS.get(design, {}), "throw_on_wal_replay_failure": False}
        result["lenient"] = run_recover(args, folder, design, json.dumps(lenient))
    return result


def run_recover(args: argparse.Namespace, folder: Path, design: str, settings: str) -> dict:
    child = spawn(args, "--child-recover", folder, design, settings)
    try:
        out, err = child.communicate(timeout=args.open_timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"error": f"recovery did not finish in {args.open_timeout}s"}
    if child.returncode != 0:
        last = (err.strip().splitlines() or [f"exit {child.returncode}"])[-1]
        return {"error": f"recovery failed (exit {child.returncode}): {last[:160]}"}
    return json.loads(out.strip().splitlines()[-1])


def verdict(args: argparse.Namespace, result: dict[str, Any]) -> str:
    state = repro.verdict(args, result)
    if "error" in result:
        return state
    left = result["leftovers"]
    if left["staged patterns"] or left["files"]:
        state += "+LEFTOVERS"
    return state


def describe(result: dict[str, Any]) -> str:
    text = repro.describe(result)
    if "recovery" in result:
        text += f"; recovery: {result['recovery']}"
    return text


def windows(events: list, marks: list[tuple[float, str]]) -> list[tuple[str, float]]:
    """(``name@k``, lifetime) for each appearance of a watched file before the DONE mark."""
    done = dict((name, t) for t, name in marks).get("DONE", float("inf"))
    count: dict[str, int] = {}
    open_at: dict[str, float] = {}
    out: list[tuple[str, float]] = []
    for t, kind, name, _ in events:
        if name not in WATCHED:
            continue
        if kind == "appear":
            count[name] = count.get(name, 0) + 1
            open_at[name] = t
            if t < done:
                out.append((f"{name}@{count[name]}", -1.0))
        elif kind == "gone" and name in open_at:
            label = f"{name}@{count[name]}"
            out = [(w, (t - open_at[name]) if w == label else life) for w, life in out]
    end = marks[-1][0]
    return [(w, life if life >= 0 else max(end - open_at[w.split("@")[0]], 0.0)) for w, life in out]


def schedule(wins: list[tuple[str, float]], instants: int) -> list[tuple[str, float]]:
    """At least one instant per window, the rest shared by window length, evenly spaced."""
    if not wins:
        return []
    total = sum(max(life, 0.001) for _, life in wins)
    spare = max(instants - len(wins), 0)
    plan = []
    for name, life in wins:
        n = 1 + round(spare * max(life, 0.001) / total)
        plan += [(name, round(life * i / n, 4)) for i in range(n)]
    return plan


def calibrate(args: argparse.Namespace, work: Path, template: Path, design: str) -> dict:
    folder = work / f"{design}-calibration"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template, folder)
    child = spawn(args, "--child-write", folder, design)
    events, _ = repro.watch(folder, child)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{design}: the un-killed write failed: {err.strip()[-400:]}")
    child_marks = repro.marks(out)
    result = recover(args, folder, design)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "events": events,
        "marks": child_marks,
        "clean": verdict(args, result),
        "clean_detail": describe(result),
    }


def costs(
    args: argparse.Namespace, work: Path, template: Path, designs: list[str]
) -> dict[str, list[float]]:
    """Seconds from OPENED to DONE of un-watched, un-killed writes, the designs interleaved
    round by round (the machine is shared: interleaving spreads its load over all of them)."""
    seconds: dict[str, list[float]] = {design: [] for design in designs}
    for _ in range(args.timing_rounds):
        for design in designs:
            folder = work / f"{design}-timing"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(template, folder)
            child = spawn(args, "--child-write", folder, design)
            out, _ = child.communicate()
            got = dict((name, t) for t, name in repro.marks(out))
            seconds[design].append(got["DONE"] - got["OPENED"])
            if "BACKED-UP" in got:
                seconds.setdefault(f"{design}: backup step", []).append(
                    got["BACKED-UP"] - got["OPENED"]
                )
            shutil.rmtree(folder, ignore_errors=True)
    return seconds


def kill_sweep(
    args: argparse.Namespace, work: Path, template: Path, design: str, plan: list[tuple[str, float]]
) -> list[dict[str, Any]]:
    rows = []
    for trigger, delay in plan:
        folder = work / f"{design}-trial"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder)
        child = spawn(args, "--child-write", folder, design)
        _, killed = repro.watch(folder, child, trigger=trigger, delay=delay)
        out, _ = child.communicate()
        last = ([name for _, name in repro.marks(out)] or ["-"])[-1]
        result = recover(args, folder, design)
        state = verdict(args, result) if killed is not None else "(no kill)"
        print(
            f"    {trigger:34s} +{delay:6.3f}s  last mark {last:16s} -> {state:18s} "
            f"{describe(result)[:150]}",
            flush=True,
        )
        rows.append(
            {
                "trigger": trigger,
                "delay": delay,
                "last_mark": last,
                "state": state,
                "result": result,
            }
        )
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def disk_full(args: argparse.Namespace, work: Path, template: Path, design: str) -> list[dict]:
    rows = []
    mount = work / "tmpfs"
    for size in [int(x) for x in args.disk_full_mb.split(",") if x]:
        mount.mkdir(exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(mount)], check=True
        )
        try:
            folder = mount / "store"
            shutil.copytree(template, folder)
            child = spawn(args, "--child-write", folder, design)
            _, err = child.communicate()
            told = (err.strip().splitlines() or ["(nothing)"])[-1]
            subprocess.run(["mount", "-o", "remount,size=1024m", str(mount)], check=True)
            result = recover(args, folder, design)
        finally:
            subprocess.run(["umount", str(mount)], check=False)
        state = verdict(args, result)
        print(
            f"    {size:3d} MB: exit {child.returncode} -> {state:18s} told: {told[:150]}",
            flush=True,
        )
        rows.append(
            {
                "size_mb": size,
                "exit": child.returncode,
                "told": told,
                "state": state,
                "result": result,
            }
        )
    return rows


def double_fault(args: argparse.Namespace, work: Path, template: Path, design: str) -> list:
    """Kill the writer inside its checkpoint, then kill the recovery at each of its steps,
    then recover again: the recovery must be idempotent."""
    rows = []
    for step in (1, 2):
        folder = work / f"{design}-double"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder)
        child = spawn(args, "--child-write", folder, design)
        repro.watch(folder, child, trigger=f"{DB}.wal.checkpoint", delay=0.1)
        child.communicate()
        crashed = spawn(args, "--child-recover", folder, design, crash_at=step)
        crashed.communicate()
        result = recover(args, folder, design)
        state = verdict(args, result)
        print(
            f"    writer killed 0.1 s after .wal.checkpoint; recovery killed at its step {step} "
            f"(exit {crashed.returncode}); recovered again -> {state} ({describe(result)[:110]})",
            flush=True,
        )
        rows.append({"step": step, "recovery_exit": crashed.returncode, "state": state})
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/ladybug-candidates")
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument(
        "--instants", type=int, default=12, help="kills per design (at least; 0: no kills)"
    )
    parser.add_argument(
        "--timing-rounds", type=int, default=3, help="un-killed runs of every design, interleaved"
    )
    parser.add_argument("--disk-full-mb", default="", help="tmpfs sizes in MB (root only)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated windows to kill in, e.g. graph.lbug.wal.checkpoint@1",
    )
    parser.add_argument(
        "--double-fault",
        action="store_true",
        help="backup designs: also kill their recovery at each step, then recover again",
    )
    parser.add_argument("--patterns", type=int, default=4704)
    parser.add_argument("--parents", type=int, default=18816)
    parser.add_argument("--fires", type=int, default=94083)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--single-model", action="store_true")
    parser.add_argument("--open-timeout", type=float, default=180.0)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--design", help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--pre-checkpoint", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--post-checkpoint", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-write", help=argparse.SUPPRESS)
    parser.add_argument("--child-recover", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_write:
        return child_write(args)
    if args.child_recover:
        return child_recover(args)
    import ladybug

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template"
    seconds = repro.build_template(args, template)
    print(
        f"ladybug {ladybug.__version__}; store built in {seconds:.1f}s "
        f"({repro.snapshot(template)[DB]:,} B); m old {repro.old_sizes(args)}, "
        f"new {repro.new_sizes(args)}",
        flush=True,
    )
    report: dict[str, Any] = {}
    for design in [d for d in args.designs.split(",") if d]:
        print(f"\n== {design}", flush=True)
        info = calibrate(args, work, template, design)
        wins = windows(info["events"], info["marks"])
        if args.only:
            wins = [(w, life) for w, life in wins if w in args.only.split(",")]
        plan = schedule(wins, args.instants)
        print(f"  un-killed: {info['clean']} ({info['clean_detail'][:120]})")
        print("  windows: " + ", ".join(f"{w} {life:.3f}s" for w, life in wins))
        rows = kill_sweep(args, work, template, design, plan) if args.instants > 0 else []
        full = disk_full(args, work, template, design) if args.disk_full_mb else []
        if args.double_fault and design in ("file-backup", "model-backup"):
            full += double_fault(args, work, template, design)
        tally: dict[str, int] = {}
        for row in rows + full:
            tally[row["state"]] = tally.get(row["state"], 0) + 1
        print(
            f"  {design}: {len(rows)} kills, {len(full)} other runs (disk full, double fault): "
            + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())),
            flush=True,
        )
        report[design] = {
            "clean": info["clean"],
            "windows": wins,
            "kills": rows,
            "disk_full": full,
            "tally": tally,
        }
    designs = list(report)
    timings = costs(args, work, template, designs) if args.timing_rounds else {}
    print("\nsummary (seconds from OPENED to DONE: median and least of the rounds)")
    for design, data in report.items():
        times = timings.get(design) or [float("nan")]
        data["seconds"] = times
        print(
            f"  {design:20s} {statistics.median(times):6.2f}s {min(times):6.2f}s  "
            + ", ".join(f"{k} {v}" for k, v in sorted(data["tally"].items()))
        )
        step = timings.get(f"{design}: backup step")
        if step:
            data["backup_seconds"] = step
            print(f"    of which the backup {statistics.median(step):6.2f}s {min(step):6.2f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
