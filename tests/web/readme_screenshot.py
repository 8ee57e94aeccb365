"""Take the README's screenshot of the pattern page (run by hand, not a test).

    python -m tests.web.readme_screenshot STORE CACHE docs/img/explorer-pattern.png

STORE is a store built like the explorer's test store (``tests.web.demo_store``); the page
shown is a middle-layer pattern that an And-Or graph uses and that has a match in the other
model, so every panel has something in it. The PNG is quantised to 256 colours to stay small.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS


def main(store: str, cache: str, out: str) -> None:
    """Serve ``store``, open the chosen pattern in Chromium and save the screenshot."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from explgraph.web import create_app

    app = create_app(store, cache_dir=Path(cache), device="cpu")
    rows = app.state.explorer.store.query(
        "MATCH (t:Template)-[:USES]->(p:Pattern)-[:MATCHES]-(:Pattern) "
        "WHERE p.layer = 'block4_conv1' MATCH (p)-[:PARENT]->(:Pattern) "
        "MATCH (:Pattern)-[:PARENT]->(p) RETURN DISTINCT p.pattern_id AS id, "
        "p.mean_score AS s ORDER BY s DESC LIMIT 1"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/pattern/{rows[0]['id']}")
        page.wait_for_function(
            "() => [...document.querySelectorAll('img.patch')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        shot = page.screenshot(full_page=False)
        browser.close()
    server.should_exit = True
    picture = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=256)
    picture.save(out, format="PNG", optimize=True)
    print(f"{out}: {Path(out).stat().st_size // 1024} KiB, pattern {rows[0]['id']}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
