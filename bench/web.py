"""Benchmark the web explorer: server time of each page on the demo store and a VGG-16-sized one.

Each page is requested ``--repeats`` times through Starlette's test client (no network); the
figure is the app's own ``Server-Timing`` (request in to response headers out, with the
template rendered), reported for the first request (cold caches: model counts, decoded
images, compiled templates) and as p50 / p95 / max of the later ones in milliseconds, plus the
process CPU time per request (all threads, the engine's too, and the test client). Wall
figures on a shared machine are inflated by its load; the CPU column is not. Targets
(issue 14): < 300 ms on the demo store, < 1 s on a VGG-16-sized store. The benchmark builds
the app without its start-up warming, so "first" is the cold cost.

    python bench/web.py --store ~/.local/share/explgraph/store     # the demo store
    python bench/web.py --vgg                                       # synthetic VGG-16-sized store
    python bench/web.py --store DIR --vgg --repeats 20

The VGG-16-sized store is :func:`graphstore.testing.synthetic.synthetic_records` at full size
(61,440 patterns, 921,600 PARENT and 400,000 FIRES edges, 4 layers x 512 filters), written
once into a temporary folder (or ``--vgg-store DIR``, reused when it exists). Its images are
not on disk, so patch requests are timed on the demo store only.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote


def _server_ms(response: Any) -> float:
    timing = response.headers.get("server-timing", "")
    match = re.search(r"dur=([\d.]+)", timing)
    return float(match.group(1)) if match else float("nan")


def discover(client: Any, store: Any) -> list[tuple[str, str]]:
    """(label, url) of the pages to time, found in the store."""
    pages = [("models", "/")]
    model = store.query("MATCH (m:Model) RETURN m.model_id AS id ORDER BY id LIMIT 1")[0]["id"]
    pages.append(("model", f"/model/{quote(model)}"))
    layers = store.query(
        "MATCH (l:Layer) WHERE l.model_id = $m RETURN l.name AS name ORDER BY l.depth",
        {"m": model},
    )
    for row in (layers[0], layers[-1]):
        pages.append((f"layer {row['name']}", f"/model/{quote(model)}/layer/{quote(row['name'])}"))
    pages.append(("filter", f"/model/{quote(model)}/layer/{quote(layers[0]['name'])}/filter/0"))
    for row in (layers[0], layers[-1]):
        found = store.query(
            "MATCH (p:Pattern) WHERE p.model_id = $m AND p.layer = $l "
            "RETURN p.pattern_id AS id ORDER BY p.mean_score DESC LIMIT 1",
            {"m": model, "l": row["name"]},
        )
        pages.append((f"pattern {row['name']}", "/pattern/" + found[0]["id"]))
    image = store.query(
        "MATCH (i:Image)-[f:FIRES]->(p:Pattern) WHERE f.model_id = $m "
        "RETURN i.image_id AS id ORDER BY id LIMIT 1",
        {"m": model},
    )[0]["id"]
    pages.append(("image", f"/image/{image}"))
    pages.append(("parts", f"/model/{quote(model)}/parts"))
    pages.append(("compare index", "/compare"))
    pairs = store.query(
        "MATCH (p:Pattern)-[:MATCHES]->(q:Pattern) RETURN DISTINCT p.model_id AS a, "
        "q.model_id AS b LIMIT 1"
    )
    if pairs:
        a, b = pairs[0]["a"], pairs[0]["b"]
        pages.append(("compare", f"/compare/{quote(a)}/{quote(b)}"))
    pages.append(("query page", "/query"))
    pages.append(
        (
            "canned query",
            f"/query/filter-patterns?run=1&model={quote(model)}"
            f"&layer={quote(layers[-1]['name'])}&filter=3",
        )
    )
    pages.append(("explain form", f"/explain?model={quote(model)}"))
    return pages


def time_store(spec: str, repeats: int, *, patches: bool) -> list[dict[str, Any]]:
    """Time every discovered page of the store at ``spec``."""
    from starlette.testclient import TestClient

    from explgraph.cli.environment import default_cache_dir
    from explgraph.web import close_app, create_app

    app = create_app(spec, cache_dir=default_cache_dir(), device="cpu", warm=False)
    client = TestClient(app, raise_server_exceptions=False)
    store = app.state.explorer.store
    pages = discover(client, store)
    if patches:
        html = client.get(pages[6][1]).text  # the first pattern page
        found = re.findall(r'src="(/patch\.png\?[^"]+)"', html)
        if found:
            pages.append(("patch png", found[0].replace("&amp;", "&")))
    results = []
    for label, url in pages:
        first = client.get(url)  # warm: caches, first template compile
        server, cpu = [], []
        for _ in range(repeats):
            started = time.process_time()
            response = client.get(url)
            cpu.append((time.process_time() - started) * 1000.0)
            server.append(_server_ms(response))
        results.append(
            {
                "page": label,
                "status": first.status_code,
                "first": _server_ms(first),
                "p50": statistics.median(server),
                "p95": sorted(server)[max(0, round(0.95 * len(server)) - 1)],
                "max": max(server),
                "cpu": statistics.median(cpu),
                "kb": len(first.content) / 1024,
            }
        )
    close_app(app)
    return results


def vgg_store(folder: Path) -> str:
    """Write the VGG-16-sized synthetic graph into ``folder`` (skipped when it is there)."""
    from graphstore import open_store
    from graphstore.testing.synthetic import synthetic_records

    if (folder / "graph.lbug").exists():
        return str(folder)
    started = time.perf_counter()
    records = synthetic_records("vgg16-synthetic")
    with open_store(str(folder)) as store:
        store.write_model(records)
    print(f"wrote the VGG-16-sized store in {time.perf_counter() - started:.0f} s: {folder}")
    return str(folder)


def print_table(title: str, results: list[dict[str, Any]], target_ms: float) -> None:
    """One line per page; ``!`` marks a p95 over the target."""
    print(f"\n{title} (target < {target_ms:.0f} ms server time)")
    print(
        f"{'page':<24} {'status':>6} {'first ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'cpu ms':>8} {'KiB':>7}"
    )
    for r in results:
        flag = " !" if r["p95"] >= target_ms or r["status"] != 200 else ""
        print(
            f"{r['page']:<24} {r['status']:>6} {r['first']:>8.1f} {r['p50']:>8.1f} "
            f"{r['p95']:>8.1f} {r['max']:>8.1f} {r['cpu']:>8.1f} {r['kb']:>7.1f}{flag}"
        )
    worst = max(r["p95"] for r in results)
    print(f"slowest p95: {worst:.1f} ms — {'within' if worst < target_ms else 'OVER'} target")


def main() -> None:
    """Parse the options and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="The demo store (explgraph demo writes one).")
    parser.add_argument("--vgg", action="store_true", help="Also time a VGG-16-sized store.")
    parser.add_argument("--vgg-store", type=Path, help="Folder for the VGG-16-sized store.")
    parser.add_argument("--repeats", type=int, default=10, help="Requests per page.")
    args = parser.parse_args()
    if not args.store and not args.vgg:
        parser.error("give --store DIR and/or --vgg")
    if args.store:
        print_table(
            f"demo store {args.store}", time_store(args.store, args.repeats, patches=True), 300.0
        )
    if args.vgg:
        with tempfile.TemporaryDirectory(prefix="explgraph-bench-web-") as scratch:
            folder = args.vgg_store or Path(scratch) / "vgg"
            spec = vgg_store(folder)
            print_table("VGG-16-sized store", time_store(spec, args.repeats, patches=False), 1000.0)


if __name__ == "__main__":
    main()
