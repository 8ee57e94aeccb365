"""Kill -9 a LadybugDB replace transaction while it commits and checkpoints; say what survives.

Self-contained (``ladybug``, ``pyarrow``, ``numpy``, stdlib). It

1. builds a store (``<workdir>/template/graph.lbug``) holding a model ``m`` ("old" version) and,
   by default, a second model ``other`` that is never touched, with a schema shaped like
   explgraph's (Model/Layer/Filter/Pattern/Image nodes; HAS_LAYER, HAS_FILTER, HAS_PATTERN,
   PARENT, FIRES relationships; ~4.7k patterns, ~94k FIRES, ~19k PARENT by default);
2. runs one replace in a child process, un-killed, and records the files of the store folder
   (appear / size / disappear, polled every ~0.5 ms) and the child's own marks (BEGIN, DELETED,
   COPIED, COMMITTED, CLOSED) on one clock: the timeline;
3. for each watched file and each of ``--instants`` delays after it appears, copies the template,
   starts the replace in a child (``BEGIN``; ``DETACH DELETE`` the old model; ``COPY`` the new
   rows from Arrow tables; ``COMMIT``; close), kills it with SIGKILL that long after the file
   appears, reopens the folder with ``ladybug.Database`` in a fresh process and counts exactly
   what is there: ``old`` (the old model, complete), ``new`` (the new one, complete),
   ``NEITHER`` (anything else: both gone, or a mix), or ``OPEN-FAILED``.

Run ``python repro.py --quick`` (under a minute) or ``python repro.py`` (the full sweep), and
``python repro.py --help`` for sizes, instants and engine settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_FILE = "graph.lbug"
MODEL = "m"
OTHER = "other"
LAYERS = 8
FILTERS_PER_LAYER = 64

SCHEMA = [
    "CREATE NODE TABLE Model(model_id STRING, version STRING, status STRING, n_patterns INT64,"
    " n_fires INT64, PRIMARY KEY (model_id))",
    "CREATE NODE TABLE Layer(layer_id STRING, model_id STRING, name STRING, depth INT64,"
    " PRIMARY KEY (layer_id))",
    "CREATE NODE TABLE Filter(filter_id STRING, model_id STRING, layer STRING, idx INT64,"
    " PRIMARY KEY (filter_id))",
    "CREATE NODE TABLE Pattern(pattern_id STRING, model_id STRING, layer STRING, filter INT64,"
    " idx INT64, mu_x DOUBLE, mu_y DOUBLE, x DOUBLE, y DOUBLE, sigma DOUBLE, mean_score DOUBLE,"
    " diagnosis STRING, PRIMARY KEY (pattern_id))",
    "CREATE NODE TABLE Image(image_id STRING, path STRING, width INT64, height INT64,"
    " PRIMARY KEY (image_id))",
    "CREATE REL TABLE HAS_LAYER(FROM Model TO Layer)",
    "CREATE REL TABLE HAS_FILTER(FROM Layer TO Filter)",
    "CREATE REL TABLE HAS_PATTERN(FROM Filter TO Pattern)",
    "CREATE REL TABLE PARENT(FROM Pattern TO Pattern, dx DOUBLE, dy DOUBLE, sigma DOUBLE,"
    " weight DOUBLE)",
    "CREATE REL TABLE FIRES(FROM Image TO Pattern, model_id STRING, x DOUBLE, y DOUBLE,"
    " score DOUBLE, rank INT64)",
]
NODE_ORDER = ("Model", "Layer", "Filter", "Pattern")
REL_ORDER = ("HAS_LAYER", "HAS_FILTER", "HAS_PATTERN", "PARENT", "FIRES")


# ------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Sizes:
    """How big one model is: patterns, PARENT edges, FIRES edges (images are shared)."""

    patterns: int
    parents: int
    fires: int

    def expected(self, version: str) -> dict[str, Any]:
        """The exact counts a complete copy of a model of this size has."""
        return {
            "version": version,
            "Layer": LAYERS,
            "Filter": LAYERS * FILTERS_PER_LAYER,
            "Pattern": self.patterns,
            "HAS_LAYER": LAYERS,
            "HAS_FILTER": LAYERS * FILTERS_PER_LAYER,
            "HAS_PATTERN": self.patterns,
            "PARENT": self.parents,
            "FIRES": self.fires,
        }


def model_tables(model_id: str, version: str, sizes: Sizes, images: int, seed: int) -> dict:
    """Arrow tables of one model, keyed by node label / relationship type."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n_filters = LAYERS * FILTERS_PER_LAYER
    layer_ids = [f"{model_id}/L{i}" for i in range(LAYERS)]
    filter_layer = np.repeat(np.arange(LAYERS), FILTERS_PER_LAYER)
    filter_ids = [f"{model_id}/L{filter_layer[j]}/f{j}" for j in range(n_filters)]
    p = sizes.patterns
    pattern_filter = np.arange(p) % n_filters
    pattern_ids = [f"{model_id}/p{k}" for k in range(p)]
    pids = np.array(pattern_ids, dtype=object)
    tables = {
        "Model": pa.table(
            {
                "model_id": [model_id],
                "version": [version],
                "status": ["complete"],
                "n_patterns": [p],
                "n_fires": [sizes.fires],
            }
        ),
        "Layer": pa.table(
            {
                "layer_id": layer_ids,
                "model_id": [model_id] * LAYERS,
                "name": [f"conv{i}" for i in range(LAYERS)],
                "depth": list(range(LAYERS)),
            }
        ),
        "Filter": pa.table(
            {
                "filter_id": filter_ids,
                "model_id": [model_id] * n_filters,
                "layer": [f"conv{i}" for i in filter_layer],
                "idx": list(range(n_filters)),
            }
        ),
        "Pattern": pa.table(
            {
                "pattern_id": pattern_ids,
                "model_id": [model_id] * p,
                "layer": [f"conv{filter_layer[f]}" for f in pattern_filter],
                "filter": pattern_filter.astype("int64"),
                "idx": np.arange(p, dtype="int64"),
                **{c: rng.random(p) for c in ("mu_x", "mu_y", "x", "y", "sigma", "mean_score")},
                "diagnosis": rng.choice(["ok", "off-object", "weak"], p).tolist(),
            }
        ),
        "HAS_LAYER": pa.table({"from": [model_id] * LAYERS, "to": layer_ids}),
        "HAS_FILTER": pa.table({"from": [layer_ids[i] for i in filter_layer], "to": filter_ids}),
        "HAS_PATTERN": pa.table(
            {"from": [filter_ids[f] for f in pattern_filter], "to": pattern_ids}
        ),
        "PARENT": pa.table(
            {
                "from": pids[rng.integers(0, p, sizes.parents)].tolist(),
                "to": pids[rng.integers(0, p, sizes.parents)].tolist(),
                **{c: rng.random(sizes.parents) for c in ("dx", "dy", "sigma", "weight")},
            }
        ),
        "FIRES": pa.table(
            {
                "from": [f"img{i}" for i in rng.integers(0, images, sizes.fires)],
                "to": pids[rng.integers(0, p, sizes.fires)].tolist(),
                "model_id": [model_id] * sizes.fires,
                "x": rng.random(sizes.fires),
                "y": rng.random(sizes.fires),
                "score": rng.random(sizes.fires),
                "rank": rng.integers(0, 50, sizes.fires),
            }
        ),
    }
    return tables


def image_table(images: int) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "image_id": [f"img{i}" for i in range(images)],
            "path": [f"/data/birds/{i:06d}.jpg" for i in range(images)],
            "width": [224] * images,
            "height": [224] * images,
        }
    )


# ------------------------------------------------------------------------------------------
# engine


def open_db(folder: Path, settings: dict[str, Any]) -> tuple[Any, Any]:
    import ladybug

    db = ladybug.Database(str(folder / DB_FILE), **settings)
    return db, ladybug.Connection(db)


def copy_model(conn: Any, tables: dict) -> None:
    for name in (*NODE_ORDER, *REL_ORDER):
        conn.execute(f"COPY {name} FROM $t", {"t": tables[name]})


def delete_model(conn: Any, model_id: str) -> None:
    """explgraph's delete: every node of the model (with its edges), the Model node last."""
    for label in ("Pattern", "Filter", "Layer", "Model"):
        conn.execute(f"MATCH (n:{label}) WHERE n.model_id = $id DETACH DELETE n", {"id": model_id})


def count_model(conn: Any, model_id: str) -> dict[str, Any]:
    """Exact counts of one model's nodes and edges, and its Model node's version."""

    def one(cypher: str) -> Any:
        rows = conn.execute(cypher, {"id": model_id}).get_all()
        return rows[0][0] if rows else None

    counts: dict[str, Any] = {
        "version": one("MATCH (m:Model) WHERE m.model_id = $id RETURN m.version")
    }
    for label in ("Layer", "Filter", "Pattern"):
        counts[label] = one(f"MATCH (n:{label}) WHERE n.model_id = $id RETURN count(n)")
    counts["HAS_LAYER"] = one(
        "MATCH (m:Model)-[e:HAS_LAYER]->(:Layer) WHERE m.model_id = $id RETURN count(e)"
    )
    for rel, src in (("HAS_FILTER", "Layer"), ("HAS_PATTERN", "Filter"), ("PARENT", "Pattern")):
        counts[rel] = one(f"MATCH (a:{src})-[e:{rel}]->() WHERE a.model_id = $id RETURN count(e)")
    counts["FIRES"] = one(
        "MATCH (:Image)-[e:FIRES]->(:Pattern) WHERE e.model_id = $id RETURN count(e)"
    )
    return counts


# ------------------------------------------------------------------------------------------
# child processes (run by re-invoking this file)


def mark(name: str) -> None:
    """One line on stdout with the shared monotonic clock, read by the parent."""
    print(f"MARK {time.monotonic():.6f} {name}", flush=True)


def child_replace(args: argparse.Namespace) -> None:
    folder = Path(args.child_replace)
    settings = json.loads(args.settings)
    new = model_tables(MODEL, "new", new_sizes(args), args.images, seed=2)
    mark("START")
    db, conn = open_db(folder, settings)
    mark("OPENED")
    if args.pre_checkpoint:
        conn.execute("CHECKPOINT")
        mark("PRE-CHECKPOINTED")
    conn.execute("BEGIN TRANSACTION")
    mark("BEGIN")
    delete_model(conn, MODEL)
    mark("DELETED")
    copy_model(conn, new)
    mark("COPIED")
    conn.execute("COMMIT")
    mark("COMMITTED")
    if args.post_checkpoint:
        conn.execute("CHECKPOINT")
        mark("POST-CHECKPOINTED")
    conn.close()
    db.close()
    mark("CLOSED")


def child_count(args: argparse.Namespace) -> None:
    folder = Path(args.child_count)
    settings = json.loads(args.settings)
    db, conn = open_db(folder, settings)
    result = {m: count_model(conn, m) for m in (MODEL, OTHER)}
    conn.close()
    db.close()
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------
# parent


def old_sizes(args: argparse.Namespace) -> Sizes:
    return Sizes(args.patterns, args.parents, args.fires)


def new_sizes(args: argparse.Namespace) -> Sizes:
    # different from the old sizes in every count, so a count says which copy it belongs to
    return Sizes(args.patterns - 17, args.parents - 13, args.fires - 101)


def other_sizes(args: argparse.Namespace) -> Sizes:
    return Sizes(max(args.patterns // 4, 1), max(args.parents // 4, 1), max(args.fires // 4, 1))


def build_template(args: argparse.Namespace, folder: Path) -> float:
    """The store before the replace: old ``m`` (and ``other``), closed cleanly."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.monotonic()
    db, conn = open_db(folder, {})
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute("COPY Image FROM $t", {"t": image_table(args.images)})
    copy_model(conn, model_tables(MODEL, "old", old_sizes(args), args.images, seed=1))
    if not args.single_model:
        copy_model(conn, model_tables(OTHER, "other", other_sizes(args), args.images, seed=3))
    conn.close()
    db.close()
    return time.monotonic() - started


def spawn(
    args: argparse.Namespace, mode: str, folder: Path, settings: str | None = None
) -> subprocess.Popen:
    command = [sys.executable, os.path.abspath(__file__), mode, str(folder)]
    command += ["--settings", settings or args.settings, *passthrough(args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def passthrough(args: argparse.Namespace) -> list[str]:
    out = ["--patterns", str(args.patterns), "--parents", str(args.parents)]
    out += ["--fires", str(args.fires), "--images", str(args.images)]
    if args.pre_checkpoint:
        out.append("--pre-checkpoint")
    if args.post_checkpoint:
        out.append("--post-checkpoint")
    return out


def snapshot(folder: Path) -> dict[str, int]:
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries}
    except FileNotFoundError:
        return {}


def watch(
    folder: Path,
    child: subprocess.Popen,
    trigger: str | None = None,
    delay: float = 0.0,
    poll: float = 0.0005,
) -> tuple[list[tuple[float, str, str, int]], float | None]:
    """Poll ``folder`` until the child ends, or until ``delay`` after ``trigger`` appears
    (then SIGKILL the child). ``trigger`` is a file name, or ``name@k`` for its k-th
    appearance. Returns the file events and the kill time (None: not killed)."""
    target, _, nth = (trigger or "").partition("@")
    wanted = int(nth) if nth else 1
    appearances = 0
    events: list[tuple[float, str, str, int]] = []
    seen: dict[str, int] = {name: size for name, size in snapshot(folder).items()}
    for name, size in seen.items():
        events.append((time.monotonic(), "present", name, size))
    fire_at: float | None = None
    while child.poll() is None:
        now = time.monotonic()
        current = snapshot(folder)
        for name, size in current.items():
            if name not in seen:
                events.append((now, "appear", name, size))
                if name == target:
                    appearances += 1
                    if appearances == wanted and fire_at is None:
                        fire_at = now + delay
            elif seen[name] != size:
                events.append((now, "size", name, size))
        for name in seen.keys() - current.keys():
            events.append((now, "gone", name, seen[name]))
        seen = current
        if fire_at is not None and time.monotonic() >= fire_at:
            child.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            child.wait()
            return events, killed
        time.sleep(poll)
    return events, None


def marks(text: str) -> list[tuple[float, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith("MARK "):
            _, stamp, name = line.split(" ", 2)
            out.append((float(stamp), name))
    return out


def recount(args: argparse.Namespace, folder: Path, lenient: bool = True) -> dict[str, Any]:
    """Reopen ``folder`` in a fresh process and count; if the engine refuses to open it, say
    why and (``lenient``) what a reopen with ``throw_on_wal_replay_failure=False`` finds."""
    result = _count_in_child(args, folder, args.settings)
    if "error" in result and lenient:
        settings = {**json.loads(args.settings), "throw_on_wal_replay_failure": False}
        result["lenient"] = _count_in_child(args, folder, json.dumps(settings))
    return result


def _count_in_child(args: argparse.Namespace, folder: Path, settings: str) -> dict[str, Any]:
    child = spawn(args, "--child-count", folder, settings=settings)
    try:
        out, err = child.communicate(timeout=args.open_timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"error": f"reopen did not finish in {args.open_timeout}s"}
    if child.returncode != 0:
        last = (err.strip().splitlines() or [f"exit {child.returncode}"])[-1]
        return {"error": f"reopen failed (exit {child.returncode}): {last[:160]}"}
    return json.loads(out.strip().splitlines()[-1])


def verdict(args: argparse.Namespace, counts: dict[str, Any]) -> str:
    if "error" in counts:
        lenient = counts.get("lenient")
        if lenient and "error" not in lenient:
            return f"OPEN-FAILED/{verdict(args, lenient)}"
        return "OPEN-FAILED"
    other_ok = args.single_model or counts[OTHER] == other_sizes(args).expected("other")
    got = counts[MODEL]
    if got == old_sizes(args).expected("old"):
        state = "old"
    elif got == new_sizes(args).expected("new"):
        state = "new"
    else:
        state = "NEITHER"
    return state if other_ok else f"{state}+OTHER-DAMAGED"


def describe(counts: dict[str, Any]) -> str:
    if "error" in counts:
        text = counts["error"]
        if "lenient" in counts:
            lenient = counts["lenient"]
            text += "; with throw_on_wal_replay_failure=False: " + (
                lenient["error"] if "error" in lenient else describe(lenient)
            )
        return text
    m = counts[MODEL]
    text = f"m: version={m['version']} Pattern={m['Pattern']} PARENT={m['PARENT']} "
    text += f"FIRES={m['FIRES']}"
    if OTHER in counts and counts[OTHER]["version"] is not None:
        text += f"; other: Pattern={counts[OTHER]['Pattern']}"
    return text


def timeline(args: argparse.Namespace, work: Path, template: Path) -> dict[str, Any]:
    """One un-killed replace: the folder's file events and the child's marks, relative to
    the child's start."""
    folder = work / "timeline"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template, folder)
    child = spawn(args, "--child-replace", folder)
    events, _ = watch(folder, child)
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the un-killed replace failed: {err.strip()[-500:]}")
    child_marks = marks(out)
    zero = child_marks[0][0]
    print("\ntimeline of one un-killed replace (seconds after the child's START mark):")
    for line in timeline_lines(child_marks, events, zero):
        print(line)
    appear: dict[str, float] = {}
    life: dict[str, float] = {}
    for t, kind, name, _ in events:
        if kind == "appear" and name not in appear:
            appear[name] = t
        if kind == "gone" and name in appear and name not in life:
            life[name] = t - appear[name]
    end = child_marks[-1][0]
    for name, start in appear.items():
        life.setdefault(name, end - start)
    counts = recount(args, folder)
    print(f"  after a clean run: {verdict(args, counts)} ({describe(counts)})")
    shutil.rmtree(folder, ignore_errors=True)
    return {"life": life, "marks": dict((n, t - zero) for t, n in child_marks)}


def timeline_lines(
    child_marks: list[tuple[float, str]], events: list[tuple[float, str, str, int]], zero: float
) -> list[str]:
    """The marks and file events in time order; a run of size changes of one file is one line."""
    rows = [(t, "mark", name, 0) for t, name in child_marks] + list(events)
    rows.sort(key=lambda row: row[0])
    lines: list[str] = []
    run: list[tuple[float, str, str, int]] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        if len(run) == 1:
            lines.append(f"  {first[0] - zero:8.3f}  size    {first[2]} -> {first[3]:,} B")
        else:
            lines.append(
                f"  {first[0] - zero:8.3f}  grows   {first[2]} -> {last[3]:,} B "
                f"({len(run)} changes until {last[0] - zero:.3f})"
            )
        run.clear()

    for row in rows:
        t, kind, name, size = row
        if kind == "size" and (not run or run[-1][2] == name):
            run.append(row)
            continue
        flush()
        if kind == "size":
            run.append(row)
        elif kind == "mark":
            lines.append(f"  {t - zero:8.3f}  [child] {name}")
        else:
            lines.append(f"  {t - zero:8.3f}  {kind:7s} {name} ({size:,} B)")
    flush()
    return lines


def delays_for(lifetime: float, instants: int, span: float | None) -> list[float]:
    """``instants`` delays spread over ``span`` (default: the file's observed lifetime,
    at least 50 ms)."""
    width = span if span is not None else max(lifetime, 0.05)
    if instants == 1:
        return [0.0]
    return [round(width * i / (instants - 1), 4) for i in range(instants)]


def sweep(args: argparse.Namespace, work: Path, template: Path, life: dict[str, float]) -> list:
    results = []
    triggers = [f for f in args.files.split(",") if f]
    for trigger in triggers:
        full = trigger
        if full not in life:
            print(f"\n{full}: did not appear in the un-killed run; killing at its delays anyway")
        delays = delays_for(life.get(full, 0.05), args.instants, args.span)
        print(f"\nkill -9 at {len(delays)} instants after {full} appears:")
        for delay in delays:
            folder = work / "trial"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(template, folder)
            child = spawn(args, "--child-replace", folder)
            _, killed = watch(folder, child, trigger=full, delay=delay)
            out, _ = child.communicate()
            child_marks = [name for _, name in marks(out)]
            if killed is None:
                note = "not killed: the file never appeared or the child ended first"
                state, counts = "(no kill)", recount(args, folder)
            else:
                counts = recount(args, folder)
                state = verdict(args, counts)
                note = describe(counts)
            last = child_marks[-1] if child_marks else "-"
            print(f"  +{delay:7.4f}s  last mark {last:12s} -> {state:14s} {note}")
            results.append(
                {
                    "trigger": full,
                    "delay": delay,
                    "last_mark": last,
                    "state": state,
                    "counts": counts,
                }
            )
            if state not in ("old", "new") and args.keep_lossy:
                kept = work / f"lossy-{trigger}-{delay}"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.move(str(folder), kept)
    return results


def disk_full(args: argparse.Namespace, work: Path, template: Path) -> list[dict[str, Any]]:
    """Run the replace un-killed on a tmpfs of each size (root, Linux), then give the tmpfs
    room and reopen: what the child was told, and what survives."""
    results = []
    mount = work / "tmpfs"
    print(f"\ndisk full: the replace on a tmpfs of {args.disk_full_mb} MB; then 1 GB and reopen")
    for size in [int(x) for x in args.disk_full_mb.split(",") if x]:
        mount.mkdir(exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(mount)], check=True
        )
        try:
            folder = mount / "store"
            shutil.copytree(template, folder)
            child = spawn(args, "--child-replace", folder)
            out, err = child.communicate()
            last_mark = ([name for _, name in marks(out)] or ["-"])[-1]
            told = (err.strip().splitlines() or ["(nothing)"])[-1][:400]
            files = snapshot(folder)
            subprocess.run(["mount", "-o", "remount,size=1024m", str(mount)], check=True)
            counts = recount(args, folder)
            state = verdict(args, counts)
        finally:
            subprocess.run(["umount", str(mount)], check=False)
        print(f"  {size:3d} MB: exit {child.returncode}, last mark {last_mark}, files {files}")
        print(f"          told: {told}")
        print(f"          after freeing space: {state} ({describe(counts)})")
        results.append(
            {
                "size_mb": size,
                "exit": child.returncode,
                "last_mark": last_mark,
                "told": told,
                "state": state,
                "counts": counts,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/ladybug-repro", help="scratch folder")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sweep: 4 instants after the .wal.checkpoint file only",
    )
    parser.add_argument("--instants", type=int, default=10, help="kill instants per file")
    parser.add_argument(
        "--span",
        type=float,
        default=None,
        help="seconds the instants spread over (default: the file's lifetime)",
    )
    parser.add_argument(
        "--files",
        default=f"{DB_FILE}.wal,{DB_FILE}.wal.checkpoint,{DB_FILE}.shadow",
        help="comma-separated file names to kill after (first appearance)",
    )
    parser.add_argument("--patterns", type=int, default=4704)
    parser.add_argument("--parents", type=int, default=18816)
    parser.add_argument("--fires", type=int, default=94083)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--single-model", action="store_true", help="no second model")
    parser.add_argument(
        "--settings",
        default="{}",
        help="ladybug.Database keyword arguments as JSON, for the replace and "
        "the reopen, e.g. '{\"auto_checkpoint\": false}'",
    )
    parser.add_argument(
        "--pre-checkpoint",
        action="store_true",
        help="CHECKPOINT before BEGIN in the replacing child",
    )
    parser.add_argument(
        "--post-checkpoint",
        action="store_true",
        help="CHECKPOINT right after COMMIT in the replacing child",
    )
    parser.add_argument("--open-timeout", type=float, default=120.0)
    parser.add_argument(
        "--keep-lossy",
        action="store_true",
        help="keep the folders that lost data under the workdir",
    )
    parser.add_argument(
        "--disk-full-mb",
        default="",
        help="comma-separated tmpfs sizes (MB) to run the replace on, un-killed "
        "(needs root); e.g. 30,32,34",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the kill sweep")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child-replace", help=argparse.SUPPRESS)
    parser.add_argument("--child-count", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_replace:
        return child_replace(args)
    if args.child_count:
        return child_count(args)
    if args.quick:
        args.instants = min(args.instants, 4)
        args.files = f"{DB_FILE}.wal.checkpoint"
    import ladybug

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template"
    print(
        f"ladybug {ladybug.__version__}, python {sys.version.split()[0]}, settings "
        f"{args.settings}, pre-checkpoint={args.pre_checkpoint}, "
        f"post-checkpoint={args.post_checkpoint}"
    )
    seconds = build_template(args, template)
    old, new = old_sizes(args), new_sizes(args)
    print(
        f"built the store in {seconds:.1f}s: m (old) {old}, m (new) {new}, "
        f"{'no other model' if args.single_model else f'other {other_sizes(args)}'}, "
        f"{args.images} images; files {snapshot(template)}"
    )
    info = timeline(args, work, template)
    results = [] if args.no_sweep else sweep(args, work, template, info["life"])
    full = disk_full(args, work, template) if args.disk_full_mb else []
    results += [{**row, "trigger": "disk-full"} for row in full]
    tally: dict[str, int] = {}
    for row in results:
        tally[row["state"]] = tally.get(row["state"], 0) + 1
    print(
        f"\nsummary: {len(results)} runs: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"timeline": info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
