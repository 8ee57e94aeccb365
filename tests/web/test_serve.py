"""``explgraph serve``: the binding it announces, its errors, and what browsing imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_cli
from tests.web.demo_store import WebStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace uvicorn.run by a recorder: what serve would have started."""
    import uvicorn

    calls: dict[str, Any] = {}

    def record(application: Any, **options: Any) -> None:
        from starlette.testclient import TestClient

        calls.update(options)
        # what a request with another machine's Host header gets while the server runs
        client = TestClient(application, raise_server_exceptions=False)
        calls["lan_status"] = client.get("/", headers={"Host": "explorer.lan:8000"}).status_code

    monkeypatch.setattr(uvicorn, "run", record)
    return calls


def test_binds_loopback_by_default_and_says_so(web_store: WebStore, served: dict[str, Any]) -> None:
    result = run_cli("serve", "--port", "8123", store=web_store.store_spec)
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert "http://127.0.0.1:8123/" in result.output
    assert "only this machine can reach it" in result.output
    assert "read-only" in result.output
    assert served["lan_status"] == 400  # DNS-rebinding guard: loopback names only


def test_other_hosts_get_a_warning_and_accept_any_host_header(
    web_store: WebStore, served: dict[str, Any]
) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", store=web_store.store_spec)
    assert served["host"] == "0.0.0.0"
    assert "other machines can reach it" in result.output
    assert served["lan_status"] == 200


def test_a_missing_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "explgraph", "--store", str(tmp_path / "none"), "serve"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: no store at")
    assert len(done.stderr.strip().splitlines()) == 1


BROWSE = """
import json, sys
from pathlib import Path
from starlette.testclient import TestClient
from explgraph.web import create_app
spec, cache, model, pattern = sys.argv[1:5]
client = TestClient(create_app(spec, cache_dir=Path(cache), device="cpu"))
urls = ["/", f"/model/{model}", f"/model/{model}/layer/block3_conv1", f"/pattern/{pattern}",
        f"/model/{model}/parts", "/compare", "/query", "/query/models?run=1", "/explain"]
codes = [client.get(url).status_code for url in urls]
print(json.dumps({"codes": codes, "torch": "torch" in sys.modules}))
"""


def test_browsing_does_not_import_torch(web_store: WebStore) -> None:
    """Only explaining an image needs torch; every other page renders without it."""
    pattern = f"{web_store.model_a}/block3_conv1/f0/p0"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BROWSE,
            web_store.store_spec,
            str(web_store.cache_dir),
            web_store.model_a,
            pattern,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [200] * 9
    assert report["torch"] is False
