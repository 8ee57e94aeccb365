"""A real ``explgraph serve`` in a child process, for the tests that need the whole server:
signals, parallel clients, the server's own memory, addresses as uvicorn decodes them.

The server is the installed console script (``explgraph`` beside the test's Python), with this
checkout first on ``PYTHONPATH``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the console script ``pip install`` put beside the interpreter
CONSOLE_SCRIPT = Path(sys.executable).parent / "explgraph"
#: the probe of issue 22: a three-way cross product of the patterns, minutes on any store
PROBE = "MATCH (a:Pattern),(b:Pattern),(c:Pattern) WHERE a.x+b.x+c.x < -1.0 RETURN count(*)"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer and how long it took."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: str
    seconds: float


@dataclass
class LiveExplorer:
    """A running server: its process and address."""

    process: subprocess.Popen[str]
    url: str

    def get(self, path: str, timeout: float = 300.0) -> Answer:
        """GET ``path`` (already quoted)."""
        return fetch(urllib.request.Request(self.url + path), timeout)

    def upload(self, model: str, image: bytes, timeout: float = 300.0) -> Answer:
        """POST ``image`` (PNG bytes) to ``/explain`` with ``model``, as the explain form does
        (the answer to a redirect is the redirect itself)."""
        boundary = "explgraph-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                'filename="bird.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            self.url + "/explain",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            method="POST",
        )
        return fetch(request, timeout, follow_redirects=False)

    def rss_mb(self) -> float:
        """The server process's resident memory, MiB (Linux ``/proc``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(status.split("VmRSS:", 1)[1].split()[0])
        return kib / 1024.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 303 comes back as an HTTPError: an answer of its own


def fetch(
    request: urllib.request.Request, timeout: float = 300.0, *, follow_redirects: bool = True
) -> Answer:
    """Send ``request``; an HTTP error status is an answer too."""
    opener = urllib.request.build_opener(*(() if follow_redirects else (_NoRedirects(),)))
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            body, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        body, status, headers = error.read(), error.code, dict(error.headers)
    headers = {name.lower(): value for name, value in headers.items()}
    return Answer(status, headers, body.decode("utf-8", "replace"), time.monotonic() - started)


def run_console(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """``explgraph ARGS`` in a process of its own (a writer beside a running server), its
    output captured; the caller checks the exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "--quiet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_explorer(store_spec: str, cache_dir: Path, *options: str) -> Iterator[LiveExplorer]:
    """``explgraph serve`` on a free loopback port until the block ends (then SIGKILL if it
    still runs); its output is in ``process.stdout`` once it has ended."""
    port = _free_port()
    assert CONSOLE_SCRIPT.is_file(), f"no console script {CONSOLE_SCRIPT}: pip install -e ."
    command = [str(CONSOLE_SCRIPT), "--store", store_spec, "serve"]
    command += ["--port", str(port), "--cache-dir", str(cache_dir), "--device", "cpu", *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    live = LiveExplorer(process, f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(live)
        yield live
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _wait_until_up(live: LiveExplorer, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if live.process.poll() is not None:
            raise RuntimeError(f"explgraph serve ended: {live.process.communicate()[0][-2000:]}")
        try:
            if live.get("/", timeout=10).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("explgraph serve did not answer within two minutes")


__all__ = ["PROBE", "Answer", "LiveExplorer", "fetch", "live_explorer", "run_console"]
