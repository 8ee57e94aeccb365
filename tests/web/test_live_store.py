"""The explorer notices writes: a model mined or a comparison written while it runs shows up
without a restart (issue 23, item 4).

The writers are the ``explgraph`` console script in processes of their own, as a user runs them
beside ``explgraph serve``. The browser test drives Debian's Chromium through Playwright (the
``browser`` fixture of ``tests/web/conftest.py``) against a real ``explgraph serve`` (skipped
with the reason where either is missing, failed in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mined import SEED1_CHECKPOINT, TOY_ITERATIONS, TOY_LABEL, MinedToy
from tests.web.demo_store import COMPARED_LAYERS, WebStore
from tests.web.live import ROOT, live_explorer, run_console

SECOND_MODEL = "toy_vgg_live-bird"

pytestmark = pytest.mark.slow


def _mine_second_model(mined: MinedToy, store: str) -> None:
    """``explgraph mine`` of the second toy CNN into ``store`` (shares the toy's feature cache)."""
    done = run_console(
        "--store", store, "mine", str(SEED1_CHECKPOINT),
        "--images", str(mined.data_dir), "--cache-dir", str(mined.cache_dir),
        "--label", TOY_LABEL, "--split", "train", "--model-id", SECOND_MODEL,
        "--iterations", str(TOY_ITERATIONS), "--seed", str(mined.seed), "--device", "cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_model_mined_while_the_server_runs_shows_up_in_the_browser(
    browser: Any, mined_toy: MinedToy, tmp_path: Path
) -> None:
    store = mined_toy.copy_store(tmp_path / "store")
    with live_explorer(store, mined_toy.cache_dir) as live:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.goto(live.url + "/")
        assert page.locator(f'a[href="/model/{mined_toy.model_id}"]').count() == 1
        assert page.locator(f'a[href="/model/{SECOND_MODEL}"]').count() == 0
        assert live.get(f"/model/{SECOND_MODEL}").status == 404

        _mine_second_model(mined_toy, store)

        page.reload()
        link = page.locator(f'a[href="/model/{SECOND_MODEL}"]')
        assert link.count() == 1, page.inner_text("main")
        link.click()
        page.wait_for_url(f"**/model/{SECOND_MODEL}")
        assert SECOND_MODEL in page.inner_text("h1")
        assert page.locator("a.layer-link").count() > 0  # its layers, read from the new data
        page.goto(live.url + f"/explain?model={SECOND_MODEL}")  # a complete model to explain with
        assert page.locator(f'option[value="{SECOND_MODEL}"]').count() == 1
        page.close()
        assert errors == []
        assert live.process.poll() is None  # the same server process throughout


def test_a_comparison_written_while_the_explorer_runs_appears(
    web_store: WebStore, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from explgraph.web import close_app, create_app

    store = str(tmp_path / "store")
    shutil.copytree(web_store.store_spec, store)
    a, b = web_store.model_b, web_store.model_a  # the stored comparison runs the other way
    app = create_app(store, cache_dir=web_store.cache_dir, device="cpu", warm=False)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert f'href="/compare/{a}/{b}"' not in client.get("/compare").text
            layers = ",".join(COMPARED_LAYERS)
            done = run_console(
                "--store", store, "compare", a, b, "--layers-a", layers, "--layers-b", layers,
                "--cache-dir", str(web_store.cache_dir), "--device", "cpu",
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

            listed = client.get("/compare")
            assert listed.status_code == 200
            entry = re.search(rf'href="/compare/{a}/{b}">[^<]*</a> \((\d+) matches\)', listed.text)
            assert entry is not None, listed.text
            assert int(entry.group(1)) > 0
    finally:
        close_app(app)


def test_a_write_moves_later_reads_to_the_new_snapshot_and_leaves_a_running_query_alone(
    mined_toy: MinedToy, tmp_path: Path
) -> None:
    import threading
    import time

    from explgraph.web.store import QueryTimeLimit, ReaderPool
    from tests.web.live import PROBE

    store = mined_toy.copy_store(tmp_path / "store")
    pool = ReaderPool(store)
    statuses = "MATCH (m:Model) RETURN m.status AS status"
    try:
        assert pool.query(statuses) == [{"status": "complete"}]
        assert not pool.changed() and not pool.refresh()  # reading never moves the stamp
        out: dict[str, BaseException] = {}

        def probe() -> None:
            try:
                pool.run_limited(lambda reader: reader.query(PROBE), 5.0)
            except BaseException as error:  # handed to the test thread
                out["error"] = error

        running = threading.Thread(target=probe, daemon=True)
        running.start()
        time.sleep(1.0)  # the probe runs on a handle of the first snapshot
        done = run_console(
            "--store", store, "query", "--write", "MATCH (m:Model) SET m.status = 'relabelled'"
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert pool.query(statuses) == [{"status": "complete"}]  # the snapshot it opened
        assert pool.changed() and pool.refresh() and pool.generation == 1
        assert pool.query(statuses) == [{"status": "relabelled"}]
        running.join(60)
        # the old snapshot stayed open under the running query until its limit stopped it
        assert isinstance(out.get("error"), QueryTimeLimit), out
        assert pool.run_limited(lambda reader: reader.query(statuses), 30.0) == [
            {"status": "relabelled"}
        ]
    finally:
        pool.close()


def _write_small_model_in_a_child(spec: str, model_id: str) -> None:
    """A small synthetic model written into ``spec`` by another process (a writer beside the
    server: one process may hold an embedded store read-write)."""
    code = "import sys; from tests.helpers.stores import write_small_model as w; w(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, spec, model_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_model_written_while_the_explorer_runs_appears_on_every_engine(
    store_spec: str, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from explgraph.web import close_app, create_app
    from tests.helpers.stores import env_settings

    _write_small_model_in_a_child(store_spec, "first")
    app = create_app(
        store_spec,
        cache_dir=tmp_path / "cache",
        device="cpu",
        warm=False,
        store_settings=env_settings(),
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert 'href="/model/first"' in client.get("/").text
            assert client.get("/model/second").status_code == 404
            _write_small_model_in_a_child(store_spec, "second")
            assert 'href="/model/second"' in client.get("/").text
            assert client.get("/model/second").status_code == 200
    finally:
        close_app(app)
