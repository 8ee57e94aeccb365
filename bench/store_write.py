"""Benchmark the graph store: bulk write of a VGG-16-sized graph, then five typical reads.

For each engine it writes the same synthetic graph twice on an empty store: once through the
project's writer (``GraphStore.write_model``: validation, replace semantics, status marks) and
once through the engine's raw bulk path (LadybugDB: ``COPY`` of the same Arrow tables; Bolt:
bare ``UNWIND $rows ... CREATE`` batches through the driver), and prints rows/s for both and
their ratio. Then it times five typical read queries (p50 / p95 over ``--repeats`` runs).

At ``--scale 1`` the graph has 61,440 patterns, 921,600 PARENT and 400,000 FIRES edges. The
ArcadeDB Bolt peer loads about 7k edges/s, so scale it down, e.g.::

    python bench/store_write.py                                  # LadybugDB, full size
    python bench/store_write.py --engine arcadedb --scale 0.02   # starts the ArcadeDB peer
    NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=... python bench/store_write.py --engine bolt

Bolt servers are wiped before each write: point it at a disposable database.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from explgraph.cli.environment import store_settings
from graphstore import GraphRecords, GraphStore
from graphstore.records import node_table, rel_table
from graphstore.settings import BoltSettings
from graphstore.testing.synthetic import synthetic_records

MODEL_ID = "bench"


def build_records(scale: float) -> GraphRecords:
    """The synthetic graph at ``scale`` (1.0 = VGG-16-sized)."""
    return synthetic_records(
        MODEL_ID,
        channels=max(1, round(512 * scale)),
        n_images=max(1, round(2000 * scale)),
    )


def bulk_tables(records: GraphRecords) -> list[tuple[str, str, pa.Table]]:
    """(kind, name, Arrow table) for every node label and edge type, in write order."""
    hierarchy = records.hierarchy()
    tables = [
        ("node", "Model", node_table("Model", records.model_frame("complete"))),
        ("node", "Layer", node_table("Layer", records.layers)),
        ("node", "Filter", node_table("Filter", records.filters)),
        ("node", "Pattern", node_table("Pattern", records.patterns)),
        ("node", "Image", node_table("Image", records.images)),
    ]
    tables += [("rel", name, rel_table(name, frame)) for name, frame in hierarchy.items()]
    tables.append(("rel", "PARENT", rel_table("PARENT", records.parents)))
    fires = records.fires.assign(model_id=MODEL_ID)
    tables.append(("rel", "FIRES", rel_table("FIRES", fires)))
    return tables


def raw_ladybug(folder: Path, tables: list[tuple[str, str, pa.Table]]) -> None:
    """Schema DDL plus one ``COPY`` per table on a fresh LadybugDB: the engine's own bulk path."""
    import ladybug

    from graphstore.schema import ladybug_ddl

    folder.mkdir(parents=True)
    database = ladybug.Database(str(folder / "graph.lbug"))
    connection = ladybug.Connection(database)
    for statement in ladybug_ddl():
        connection.execute(statement)
    for _, name, table in tables:
        connection.execute(f"COPY {name} FROM $frame", {"frame": table})
    connection.close()
    database.close()


def _consume(statement: str, params: dict[str, Any]) -> Callable[[Any], None]:
    def work(tx: Any) -> None:
        tx.run(statement, params).consume()

    return work


def raw_bolt(settings: BoltSettings, tables: list[tuple[str, str, pa.Table]]) -> None:
    """Bare ``UNWIND $rows`` CREATE batches through the driver, keys indexed first."""
    import neo4j

    from graphstore.schema import cypher_constraints, cypher_node_rows, cypher_relationship_rows

    driver = neo4j.GraphDatabase.driver(settings.uri, auth=(settings.user, settings.password))
    with driver.session(database=settings.database) as session:
        for statement in cypher_constraints():
            session.execute_write(_consume(statement, {}))
        for kind, name, table in tables:
            if kind == "node":
                statement = cypher_node_rows(name)
            else:
                statement = cypher_relationship_rows(name, "CREATE")
            for start in range(0, table.num_rows, 5000):
                rows = table.slice(start, 5000).to_pylist()
                session.execute_write(_consume(statement, {"rows": rows}))
    driver.close()


def read_queries(records: GraphRecords) -> list[tuple[str, str, Callable[[int], dict[str, Any]]]]:
    """Five typical reads, each with a parameter generator that varies with the repeat index."""
    filters = records.filters["filter_id"].tolist()
    patterns = records.patterns["pattern_id"].tolist()
    images = records.images["image_id"].tolist()
    low = records.layers["name"].iloc[0]
    return [
        (
            "patterns of a filter",
            "MATCH (f:Filter {filter_id: $id})-[:HAS_PATTERN]->(p:Pattern) "
            "RETURN p.pattern_id AS id, p.mu_x AS mu_x, p.mu_y AS mu_y",
            lambda i: {"id": filters[(i * 7919) % len(filters)]},
        ),
        (
            "parents of a pattern",
            "MATCH (c:Pattern {pattern_id: $id})-[e:PARENT]->(p:Pattern) "
            "RETURN p.pattern_id AS id, e.dx AS dx, e.dy AS dy",
            lambda i: {"id": patterns[(i * 7919) % (len(patterns) // 2)]},
        ),
        (
            "patterns firing on an image",
            "MATCH (i:Image {image_id: $id})-[f:FIRES]->(p:Pattern) "
            "RETURN p.pattern_id AS id, f.score AS score ORDER BY score DESC LIMIT 20",
            lambda i: {"id": images[(i * 7919) % len(images)]},
        ),
        (
            "filters holding most patterns",
            "MATCH (f:Filter)-[:HAS_PATTERN]->(p:Pattern) WHERE f.model_id = $model "
            "RETURN f.filter_id AS id, count(p) AS n ORDER BY n DESC LIMIT 10",
            lambda i: {"model": MODEL_ID},
        ),
        (
            "strongest spatial relations of a layer",
            "MATCH (c:Pattern)-[e:PARENT]->(p:Pattern) WHERE c.layer = $layer "
            "RETURN c.pattern_id AS child, p.pattern_id AS parent, e.weight AS w "
            "ORDER BY w DESC LIMIT 10",
            lambda i: {"layer": low},
        ),
    ]


def time_reads(store: GraphStore, records: GraphRecords, repeats: int) -> None:
    """Print p50 / p95 latency of each typical read."""
    for name, cypher, params in read_queries(records):
        store.query(cypher, params(0))  # warm caches and the plan cache once
        seconds = []
        for index in range(repeats):
            start = time.perf_counter()
            store.query(cypher, params(index + 1))
            seconds.append(time.perf_counter() - start)
        seconds.sort()
        p50 = statistics.median(seconds)
        p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
        print(f"  read  {name:<40} p50 {p50 * 1e3:8.2f} ms   p95 {p95 * 1e3:8.2f} ms")


def _seconds(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def report(rows: int, writer_s: list[float], raw_s: list[float]) -> None:
    """One engine's write figures: the best of the rounds (the machine may be shared)."""
    writer, raw = min(writer_s), min(raw_s)
    rounds = f"best of {len(writer_s)}" if len(writer_s) > 1 else "1 round"
    print(f"  write writer  {rows:>10,} rows in {writer:8.2f} s = {rows / writer:>10,.0f} rows/s")
    print(f"  write raw     {rows:>10,} rows in {raw:8.2f} s = {rows / raw:>10,.0f} rows/s")
    print(f"  writer rows/s / raw rows/s = {raw / writer:.2f}  ({rounds})")


def bench_ladybug(records: GraphRecords, repeats: int, rounds: int, workdir: Path) -> None:
    """Writer vs ``COPY`` on fresh LadybugDB folders (alternating), then the reads."""
    from graphstore.ladybug_engine import LadybugStore

    tables = bulk_tables(records)
    rows = sum(table.num_rows for _, _, table in tables)
    print(f"ladybug ({workdir})")
    writer_s, raw_s = [], []
    for index in range(rounds):
        raw_s.append(_seconds(partial(raw_ladybug, workdir / f"raw{index}", tables)))
        with LadybugStore(str(workdir / f"writer{index}")) as store:
            writer_s.append(_seconds(partial(store.write_model, records)))
    report(rows, writer_s, raw_s)
    with LadybugStore(str(workdir / "writer0"), read_only=True) as store:
        time_reads(store, records, repeats)


def bench_bolt(
    records: GraphRecords, repeats: int, rounds: int, settings: BoltSettings, label: str
) -> None:
    """Writer vs bare UNWIND batches on a Bolt server (wiped before each), then the reads."""
    from graphstore.bolt_engine import BoltStore

    tables = bulk_tables(records)
    rows = sum(table.num_rows for _, _, table in tables)
    print(f"{label} ({settings.uri})")
    writer_s, raw_s = [], []
    with BoltStore(settings.uri, settings=settings) as store:
        for _ in range(rounds):
            store.query("MATCH (n) DETACH DELETE n", write=True)
            raw_s.append(_seconds(partial(raw_bolt, settings, tables)))
            store.query("MATCH (n) DETACH DELETE n", write=True)
            writer_s.append(_seconds(partial(store.write_model, records)))
        report(rows, writer_s, raw_s)
        time_reads(store, records, repeats)


def main() -> None:
    """Parse the flags and run the chosen engines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--engine",
        choices=["ladybug", "arcadedb", "bolt"],
        action="append",
        help="engines to run (repeatable); default ladybug, plus bolt if NEO4J_URI is set",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="graph size, 1.0 = VGG-16")
    parser.add_argument("--repeats", type=int, default=50, help="runs per read query")
    parser.add_argument("--rounds", type=int, default=1, help="write rounds; the best is shown")
    parser.add_argument("--workdir", type=Path, help="where the embedded stores go (default tmp)")
    args = parser.parse_args()

    import os

    engines = args.engine or (["ladybug", "bolt"] if os.environ.get("NEO4J_URI") else ["ladybug"])
    start = time.perf_counter()
    records = build_records(args.scale)
    rows = len(records.patterns), len(records.parents), len(records.fires)
    print(
        f"synthetic graph at scale {args.scale}: {rows[0]:,} patterns, {rows[1]:,} PARENT, "
        f"{rows[2]:,} FIRES (built in {time.perf_counter() - start:.1f} s)"
    )
    with tempfile.TemporaryDirectory(prefix="explgraph-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        for engine in engines:
            if engine == "ladybug":
                bench_ladybug(records, args.repeats, args.rounds, workdir / "ladybug")
            elif engine == "arcadedb":
                from graphstore.testing.arcadedb_peer import arcadedb_peer

                with arcadedb_peer(workdir / "arcadedb") as peer:
                    bench_bolt(records, args.repeats, args.rounds, peer.settings, "arcadedb")
            else:
                uri = os.environ.get("NEO4J_URI")
                if not uri:
                    parser.error("--engine bolt needs NEO4J_URI (and NEO4J_PASSWORD)")
                bench_bolt(
                    records,
                    args.repeats,
                    args.rounds,
                    BoltSettings.for_uri(uri, store_settings()),
                    "bolt",
                )


if __name__ == "__main__":
    main()
