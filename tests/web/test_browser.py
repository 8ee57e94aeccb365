"""The explorer in a real browser: Debian's Chromium driven by Playwright for Python.

Chromium (the ``browser`` fixture of ``tests/web/conftest.py``) is launched from its executable
path (``EXPLGRAPH_CHROMIUM``, default ``/usr/bin/chromium``; ``.ci/tools/chromium.sh`` installs
it), never downloaded by Playwright.
Without it (or without playwright) the tests skip with the reason, except in CI (``CI=true``),
where they fail (:mod:`tests.helpers.ci`). Every page's console must stay free of errors (a
failed image load or a Content-Security-Policy violation is one). Screenshots go to
``EXPLGRAPH_SCREENSHOTS`` (default: a folder under pytest's tmp) and are named by step.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette

from tests.web.demo_store import EXPLAINED_LAYER, HOSTILE_PART, PART, WebStore

EXPLAIN_TIMEOUT_MS = 600_000

# the browser first: a missing one skips before the session's store is built
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("browser")]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go."""
    named = os.environ.get("EXPLGRAPH_SCREENSHOTS")
    folder = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def live_url(web_app: Starlette) -> Iterator[str]:
    """The explorer served by uvicorn on a free loopback port, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="explorer", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; the test fails if anything was logged as a console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    opened.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    yield opened
    context.close()
    assert errors == [], errors


def _patches_loaded(page: Any) -> int:
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.patch')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    return int(page.locator("img.patch").count())


def test_click_through_models_layer_pattern_parent_image(
    page: Any, live_url: str, web_store: WebStore, screenshots: Path
) -> None:
    model = web_store.model_a
    page.goto(live_url + "/")
    assert page.locator(f'a[href="/model/{model}"]').count() >= 1
    page.screenshot(path=str(screenshots / "01-models.png"), full_page=True)

    page.click(f'a.layer-link[href="/model/{model}/layer/block3_conv1"]')
    page.wait_for_url(f"**/model/{model}/layer/block3_conv1")
    page.screenshot(path=str(screenshots / "02-layer.png"))

    page.locator("#filters a.pattern-link").first.click()
    page.wait_for_url(f"**/pattern/{model}/block3_conv1/**")
    first = page.url
    assert _patches_loaded(page) > 0
    assert page.locator("#neighbourhood a.node-parent").count() > 0
    page.screenshot(path=str(screenshots / "03-pattern.png"), full_page=True)

    parent = page.locator("#neighbourhood a.node-parent").first
    target = parent.get_attribute("href")
    parent.click()  # a node of the neighbourhood view moves to that pattern
    page.wait_for_url(f"**{target}")
    assert page.url != first and "/block3_conv2/" in page.url
    assert _patches_loaded(page) > 0
    assert target.removeprefix("/pattern/") in page.inner_text("#pattern-title")
    page.screenshot(path=str(screenshots / "04-parent.png"), full_page=True)

    page.locator("a:has(img.patch)").first.click()
    page.wait_for_url("**/image/*")
    assert page.locator("#image-title").is_visible()
    loaded = page.evaluate(
        "() => new Promise(done => { const i = new Image(); i.onload = () => done(i.naturalWidth);"
        " i.onerror = () => done(0); i.src = document.querySelector('svg.overlay image')"
        ".getAttribute('href'); })"
    )
    assert loaded > 0
    page.screenshot(path=str(screenshots / "05-image.png"), full_page=True)


def test_upload_an_image_and_see_its_heat_map(
    page: Any, live_url: str, web_store: WebStore, screenshots: Path
) -> None:
    from miner.data.folder import load_dataset

    bird = next(iter(load_dataset(web_store.data_dir).select(split="test", label="bird").records))
    page.goto(live_url + f"/explain?model={web_store.model_a}")
    page.set_input_files("#upload-form input[name=image]", str(bird.path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/explain/*")
    page.screenshot(path=str(screenshots / "06-explaining.png"))
    page.wait_for_selector("#job-result", timeout=EXPLAIN_TIMEOUT_MS)
    assert page.locator("#prediction li").count() == 3
    href = page.get_attribute("#heatmap image", "href")
    assert href is not None and href.endswith("/heatmap.png")
    heat = page.request.get(live_url + href)
    plain = page.request.get(live_url + href.replace("heatmap.png", "image.png"))
    assert heat.ok and plain.ok
    heat_pixels = np.asarray(Image.open(io.BytesIO(heat.body())), dtype=np.float64)
    plain_pixels = np.asarray(Image.open(io.BytesIO(plain.body())), dtype=np.float64)
    assert heat_pixels.shape == plain_pixels.shape
    warmer = heat_pixels[..., 0] - plain_pixels[..., 0]
    assert (warmer > 20).mean() > 0.01  # a visible heat overlay, not the bare image
    assert page.locator("#parts a.pattern-link").count() > 0  # the patterns that voted
    page.screenshot(path=str(screenshots / "07-heatmap.png"), full_page=True)


def test_run_a_canned_query_and_follow_a_result(
    page: Any, live_url: str, web_store: WebStore, screenshots: Path
) -> None:
    page.goto(live_url + "/query")
    page.click('a.canned-link[href="/query/filter-patterns"]')
    page.wait_for_url("**/query/filter-patterns")
    page.fill("#canned-form input[name=model]", web_store.model_a)
    page.fill("#canned-form input[name=layer]", "block4_conv2")
    page.fill("#canned-form input[name=filter]", "3")
    page.click("#canned-form button[type=submit]")
    page.wait_for_selector("#results")
    links = page.locator("#results a")
    assert links.count() > 0
    page.screenshot(path=str(screenshots / "08-canned-query.png"), full_page=True)
    chosen = links.first.inner_text()
    links.first.click()
    page.wait_for_url("**/pattern/**")
    assert chosen in page.inner_text("#pattern-title")


def test_cypher_console_in_the_browser(
    page: Any, live_url: str, web_store: WebStore, screenshots: Path
) -> None:
    page.goto(live_url + "/query")
    page.fill(
        "#cypher-form textarea",
        "MATCH (c:Pattern)-[r:PARENT]->(p:Pattern) WHERE c.model_id = $m "
        "RETURN c.pattern_id AS child, p.pattern_id AS parent, r.weight AS weight "
        "ORDER BY weight DESC LIMIT 5",
    )
    page.fill("#cypher-form input[name=params]", json.dumps({"m": web_store.model_a}))
    page.click("#cypher-form button[type=submit]")
    page.wait_for_selector("#results")
    assert page.locator("#results tbody tr").count() == 5
    assert page.locator("#results a").count() == 10  # child and parent link to their pages
    page.screenshot(path=str(screenshots / "09-cypher.png"), full_page=True)


def test_model_page_shows_the_explainer_networks(
    page: Any, live_url: str, web_store: WebStore, screenshots: Path
) -> None:
    model = web_store.model_a
    page.goto(live_url + f"/model/{model}")
    table = page.locator("#explainers")
    assert table.is_visible()
    assert page.locator("#explainers tr.explainer-interpretable").count() == 1
    assert page.locator("#explainers tr.explainer-control").count() == 1
    parts = page.locator("#explainers tr.explainer-interpretable ul.explainer-parts li")
    assert parts.all_inner_texts() == [
        f"{PART}: f0, f2 · purity 0.7",
        f"{HOSTILE_PART}: f1 · purity 0.6",  # shown as text, never run
    ]
    page.screenshot(path=str(screenshots / "10-explainers.png"), full_page=True)
    link = f'#explainers a.layer-link[href="/model/{model}/layer/{EXPLAINED_LAYER}"]'
    page.click(link)
    page.wait_for_url(f"**/model/{model}/layer/{EXPLAINED_LAYER}")
