"""Fixtures of the explorer's tests: the test store (built once per session) and clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers.ci import missing_tool

CHROMIUM = os.environ.get("EXPLGRAPH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from tests.helpers.mined import MinedToy
    from tests.web.demo_store import WebStore


@pytest.fixture(scope="session")
def web_store(mined_toy: MinedToy, tmp_path_factory: pytest.TempPathFactory) -> WebStore:
    """The mined toy with a second model, stored matches and two And-Or graphs (read-only)."""
    from tests.web.demo_store import build_web_store

    return build_web_store(mined_toy, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def web_app(web_store: WebStore) -> Iterator[Starlette]:
    """The explorer over the test store, shared by the session."""
    from explgraph.web import close_app, create_app

    app = create_app(web_store.store_spec, cache_dir=web_store.cache_dir, device="cpu")
    yield app
    close_app(app)


@pytest.fixture
def client(web_app: Starlette) -> Iterator[TestClient]:
    """A test client that answers server errors with the 500 page, as a real server would."""
    from starlette.testclient import TestClient

    with TestClient(web_app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium through Playwright, or a skip (a failure in CI) saying what is missing.

    One per session, shared by every browser test (Playwright's sync API runs one at a time).
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_tool("playwright is not installed: pip install playwright")
    if not Path(CHROMIUM).is_file():
        missing_tool(
            f"no Chromium at {CHROMIUM}: run .ci/tools/chromium.sh (or set EXPLGRAPH_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
