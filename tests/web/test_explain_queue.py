"""Explanations are bounded in number and memory: a queue with a limit (beyond it 429 with
Retry-After), the work in a worker process whose memory goes back to the system."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.web.demo_store import WebStore
from tests.web.live import LiveExplorer, live_explorer

UPLOADS = 30


def _bird_png(web_store: WebStore) -> bytes:
    from miner.data.folder import load_dataset

    birds = load_dataset(web_store.data_dir).select(split="test", label="bird").records
    return next(iter(birds)).path.read_bytes()


def _upload(url: str, model: str, image: bytes) -> Any:
    import httpx2

    return httpx2.post(
        url + "/explain",
        data={"model": model},
        files={"image": ("bird.png", image, "image/png")},
        follow_redirects=False,
        timeout=300,
    )


def _finished(live: LiveExplorer, location: str, within_s: float = 600.0) -> str:
    import json

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status = json.loads(live.get(location + "/status").body)
        if status["state"] == "failed":  # the reason shows in the assertion's diff
            return f"failed: {status.get('error')}"
        if status["state"] == "done":
            return "done"
        time.sleep(0.5)
    raise AssertionError(f"{location} did not finish")


def test_a_full_queue_answers_429_with_retry_after(web_store: WebStore) -> None:
    """``serve --explain-queue 0``: one explanation runs, none waits; the next upload is
    refused at once with a Retry-After, and the server goes on answering."""
    image = _bird_png(web_store)
    with live_explorer(web_store.store_spec, web_store.cache_dir, "--explain-queue", "0") as live:
        first = live.upload(web_store.model_a, image)
        second = live.upload(web_store.model_a, image)
        page = live.get("/")
        job = live.get(first.headers["location"] + "/status") if first.status == 303 else None
    assert first.status == 303, first.body[-500:]
    assert second.status == 429, second.body[-500:]
    assert int(second.headers["retry-after"]) >= 1
    assert "1 explanation already running or waiting" in second.body
    assert "try again in about" in second.body
    assert page.status == 200
    assert job is not None and job.status == 200  # the first one is the explorer's job


def test_sigterm_while_an_explanation_runs_stops_server_and_worker_within_5_s(
    web_store: WebStore,
) -> None:
    image = _bird_png(web_store)
    with live_explorer(web_store.store_spec, web_store.cache_dir) as live:
        started = live.upload(web_store.model_a, image)
        assert started.status == 303, started.body[-500:]
        workers = _children_once_running(live, started.headers["location"])
        signalled = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        code = live.process.wait(30)
        while any(_alive(pid) for pid in workers) and time.monotonic() < signalled + 30:
            time.sleep(0.05)
        took = time.monotonic() - signalled
        output = live.process.stdout.read() if live.process.stdout else ""
    assert took < 5.0, output[-2000:]
    assert code in (0, -signal.SIGTERM), output[-2000:]
    assert not [pid for pid in workers if _alive(pid)]


def _children_once_running(live: LiveExplorer, location: str, within_s: float = 120.0) -> set[int]:
    """The server's child processes once the job runs in its worker."""
    import json

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status = json.loads(live.get(location + "/status").body)
        children = _children(live.process.pid)
        if status["state"] == "running" and children:
            return children
        assert status["state"] != "done", "the job finished before the signal could be sent"
        time.sleep(0.1)
    raise AssertionError("the explanation's worker did not start")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_thirty_parallel_uploads_are_queued_or_refused_and_memory_comes_back(
    web_store: WebStore,
) -> None:
    image = _bird_png(web_store)
    with live_explorer(web_store.store_spec, web_store.cache_dir) as live:
        first = _upload(live.url, web_store.model_a, image)
        assert first.status_code == 303
        assert _finished(live, first.headers["location"]) == "done"
        after_first = live.rss_mb()
        with ThreadPoolExecutor(UPLOADS) as pool:
            answers = list(
                pool.map(lambda _: _upload(live.url, web_store.model_a, image), range(UPLOADS))
            )
        statuses = [answer.status_code for answer in answers]
        accepted = [a.headers["location"] for a in answers if a.status_code == 303]
        states = [_finished(live, location) for location in accepted]
        after_all = live.rss_mb()
    assert set(statuses) <= {303, 429}, statuses  # queued or refused, never a 5xx
    assert accepted and 429 in statuses
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    assert states == ["done"] * len(accepted)
    print(f"RSS after the first job {after_first:.0f} MiB, after the rest {after_all:.0f} MiB")
    assert after_all <= 1.2 * after_first, (after_first, after_all)
