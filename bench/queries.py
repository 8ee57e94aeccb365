"""Benchmark every canned query (p50 / p95) on a VGG-16-sized store, on each engine.

The store holds the synthetic graph of ``bench/store_write.py`` (scale 1: 61,440 patterns,
921,600 PARENT and 400,000 FIRES edges), plus a small And-Or-graph part and a few diagnoses so
that ``part-patterns`` and ``diagnosed-patterns`` have rows. Each query runs ``--repeats`` times
with parameters that vary per run (different patterns, filters, images, layers); the first run
warms caches and is not counted. Goal (issue 13): p50 <= 20 ms for every query; the store's
write-time answers (:mod:`graphstore.precompute`: TOP_PATH, RANKED_CHILD and FLAGGED edges,
per-filter busy figures) are what keep ``path-to-top``, ``strongest-relations``,
``diagnosed-patterns`` and ``busy-filters`` off full scans. ::

    python bench/queries.py                                   # LadybugDB, VGG-16 size
    python bench/queries.py --store /tmp/q/store              # reuse a store written before
    python bench/queries.py --engine arcadedb --scale 0.05    # the ArcadeDB Bolt peer, smaller

Bolt servers given by NEO4J_URI (``--engine bolt``) are wiped first: use a disposable database.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

# This file is bench/queries.py: drop bench/ from the path so `queries` is the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("bench_store_write", _HERE / "store_write.py")
assert _spec is not None and _spec.loader is not None
_store_write = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_store_write)
MODEL_ID: str = _store_write.MODEL_ID
build_records: Callable[[float], Any] = _store_write.build_records

from graphstore import GraphRecords, GraphStore, open_store  # noqa: E402
from queries.canned import CANNED, run_canned  # noqa: E402

Params = Callable[[int], dict[str, Any]]


def extras(records: GraphRecords) -> dict[str, pd.DataFrame]:
    """One part with two templates using 20 patterns each, and 500 diagnosed patterns."""
    patterns = records.patterns["pattern_id"].tolist()
    part_id = f"{MODEL_ID}/part/head"
    templates = [f"{part_id}/t{k}" for k in range(2)]
    uses = pd.DataFrame(
        {
            "src": [templates[k % 2] for k in range(40)],
            "dst": [patterns[(k * 997) % len(patterns)] for k in range(40)],
            "dx": [float(k) for k in range(40)],
            "dy": [float(-k) for k in range(40)],
            "weight": [1.0 / (k + 1) for k in range(40)],
        }
    )
    return {
        "Part": pd.DataFrame({"part_id": [part_id], "model_id": [MODEL_ID], "name": ["head"]}),
        "Template": pd.DataFrame(
            {
                "template_id": templates,
                "model_id": [MODEL_ID] * 2,
                "part": ["head"] * 2,
                "idx": [0, 1],
            }
        ),
        "HAS_TEMPLATE": pd.DataFrame({"src": [part_id] * 2, "dst": templates}),
        "USES": uses.drop_duplicates(["src", "dst"]),
        "diagnosis": pd.DataFrame(
            {
                "pattern_id": patterns[:: max(1, len(patterns) // 500)],
                "diagnosis": "background",
                "off_object": 0.5,
            }
        ),
    }


def write_store(store: GraphStore, records: GraphRecords) -> None:
    """The model, then the part and diagnoses, as the CLI would write them."""
    store.write_model(records)
    more = extras(records)
    store.write_nodes("Part", more["Part"])
    store.write_nodes("Template", more["Template"])
    store.write_relationships("HAS_TEMPLATE", more["HAS_TEMPLATE"])
    store.write_relationships("USES", more["USES"])
    store.write_nodes("Pattern", more["diagnosis"])


def parameters(records: GraphRecords) -> dict[str, Params]:
    """A parameter generator per canned query, varying with the run index."""
    patterns = records.patterns
    layers = records.layers["name"].tolist()
    # middle-layer patterns have both parents and children
    middle = patterns[patterns["layer"] == layers[len(layers) // 2]]["pattern_id"].tolist()
    low = patterns[patterns["layer"] == layers[0]]["pattern_id"].tolist()
    fired = records.fires["dst"].drop_duplicates().tolist()
    images = records.images["image_id"].tolist()
    channels = int(records.filters["idx"].max()) + 1

    def pick(values: list[Any], i: int) -> Any:
        return values[(i * 7919) % len(values)]

    return {
        "models": lambda i: {},
        "filter-patterns": lambda i: {
            "model": MODEL_ID,
            "layer": pick(layers, i),
            "filter": (i * 31) % channels,
        },
        "busy-filters": lambda i: {"model": MODEL_ID, "layer": pick(layers, i)},
        "pattern-relations": lambda i: {"pattern": pick(middle, i)},
        "strongest-relations": lambda i: {"model": MODEL_ID, "layer": pick(layers[:-1], i)},
        "pattern-top-images": lambda i: {"pattern": pick(fired, i)},
        "image-patterns": lambda i: {"model": MODEL_ID, "image": pick(images, i)},
        "path-to-top": lambda i: {"pattern": pick(low, i)},
        "part-patterns": lambda i: {"model": MODEL_ID, "part": "head"},
        "diagnosed-patterns": lambda i: {"model": MODEL_ID},
    }


def time_canned(store: GraphStore, records: GraphRecords, repeats: int, warmup: int = 10) -> None:
    """Print p50 / p95 (ms) and the row count of every canned query.

    First every query runs ``warmup`` times (not counted): a server that has just taken a
    VGG-16-sized write (the ArcadeDB peer's JVM) answers slower until it settles.
    """
    generators = parameters(records)
    missing = sorted(set(CANNED) - set(generators))
    if missing:
        raise SystemExit(f"no parameters for canned queries {missing}: add them to bench")
    for name in CANNED:
        for index in range(warmup):
            run_canned(store, name, generators[name](-1 - index))
    for name in CANNED:
        make = generators[name]
        rows = run_canned(store, name, make(0))  # warm-up, not counted
        seconds = []
        for index in range(repeats):
            start = time.perf_counter()
            run_canned(store, name, make(index + 1))
            seconds.append(time.perf_counter() - start)
        seconds.sort()
        p50 = statistics.median(seconds)
        p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
        flag = "" if p50 <= 0.020 else "  > 20 ms"
        print(
            f"  {name:<22} p50 {p50 * 1e3:8.2f} ms   p95 {p95 * 1e3:8.2f} ms   "
            f"rows {len(rows):>4}{flag}",
            flush=True,
        )


def main() -> None:
    """Parse the flags, build or reuse the store, time the canned queries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["ladybug", "arcadedb", "bolt"], default="ladybug")
    parser.add_argument("--scale", type=float, default=1.0, help="graph size, 1.0 = VGG-16")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per query")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed runs per query before any is timed"
    )
    parser.add_argument(
        "--store", type=Path, help="LadybugDB folder: reused if it holds the model, else written"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    records = build_records(args.scale)
    print(
        f"synthetic graph at scale {args.scale}: {len(records.patterns):,} patterns, "
        f"{len(records.parents):,} PARENT, {len(records.fires):,} FIRES "
        f"(built in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="explgraph-bench-q-") as scratch:
        if args.engine == "ladybug":
            folder = args.store or Path(scratch) / "store"
            fresh = not (folder / "graph.lbug").exists()
            if fresh:
                with open_store(str(folder)) as store:
                    started = time.perf_counter()
                    write_store(store, records)
                    print(f"written in {time.perf_counter() - started:.1f} s", flush=True)
            with open_store(str(folder), read_only=True) as store:
                print(f"ladybug ({folder})")
                time_canned(store, records, args.repeats, args.warmup)
            return
        if args.engine == "arcadedb":
            from graphstore.bolt_engine import BoltStore
            from graphstore.testing.arcadedb_peer import arcadedb_peer

            with (
                arcadedb_peer(Path(scratch) / "arcadedb") as peer,
                BoltStore(peer.uri, settings=peer.settings) as store,
            ):
                started = time.perf_counter()
                write_store(store, records)
                print(f"written in {time.perf_counter() - started:.1f} s", flush=True)
                print(f"arcadedb peer ({peer.uri})")
                time_canned(store, records, args.repeats, args.warmup)
            return
        import os

        from graphstore.bolt_engine import BoltStore

        uri = os.environ["NEO4J_URI"]
        with BoltStore(uri) as store:
            store.query("MATCH (n) DETACH DELETE n", write=True)
            write_store(store, records)
            print(f"bolt ({uri})")
            time_canned(store, records, args.repeats, args.warmup)


if __name__ == "__main__":
    main()
