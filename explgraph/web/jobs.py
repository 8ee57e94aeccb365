"""Explaining an image is long work (the CNN, the graph's inference): it runs as a job.

A request starts a job and gets its id (random, made here); the job page polls the job's state
and progress and shows the result when it is done. One job runs at a time, in a worker process
of its own (:mod:`explgraph.web.explain_worker`) whose memory goes back to the system when it
ends; at most ``max_waiting`` wait behind it, and a request beyond that is refused with
:class:`QueueFull` (the app answers 429 with ``Retry-After``). Each job has a private folder
(the upload, the heat map), deleted when the job is dropped: the last :data:`KEPT_JOBS` jobs
are kept, their pictures on disk, not in memory.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from explgraph.web.explain_worker import Checkpoints, ExplainRequest, explain_in_worker
from graphstore.settings import StoreSettings
from miner.data.records import Box

KEPT_JOBS = 16
#: jobs that may wait behind the running one
MAX_WAITING = 8
#: what Retry-After assumes one job takes before any has finished, seconds
_FIRST_GUESS_S = 15.0
#: how long a stopped worker gets before it is killed, seconds
_STOP_GRACE_S = 1.0
log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Too many explanations wait already; ``retry_after`` seconds is a fair guess to retry."""

    def __init__(self, pending: int, retry_after: int) -> None:
        jobs = "explanation" if pending == 1 else "explanations"
        super().__init__(
            f"{pending} {jobs} already running or waiting (the most this explorer takes): "
            f"try again in about {retry_after} s"
        )
        self.retry_after = retry_after


@dataclass
class Job:
    """One explanation: its input, where it stands, and its result."""

    job_id: str
    model_id: str
    image_name: str
    image_id: str | None  # a stored image, or None for an upload
    folder: Path  # the job's own: the upload and the heat map
    state: str = "queued"  # queued, running, done, failed
    stage: str = "waiting for an earlier explanation"
    done: float = 0.0
    total: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)

    def status(self) -> dict[str, Any]:
        """What the job page polls: state, stage and the fraction done."""
        fraction = None
        if self.total:
            fraction = min(max(self.done / self.total, 0.0), 1.0)
        return {
            "job": self.job_id,
            "state": self.state,
            "stage": self.stage,
            "fraction": fraction,
            "error": self.error,
            "seconds": round(time.monotonic() - self.started, 1),
        }

    def picture(self, what: str) -> bytes | None:
        """The heat map (``heatmap``) or the uploaded image as decoded (``image``), as PNG."""
        path = self.folder / ("heatmap.png" if what == "heatmap" else "upload.png")
        if what == "heatmap" and self.state != "done":
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def apply(self, message: tuple[Any, ...]) -> None:
        """Record one message of the worker (:mod:`explgraph.web.explain_worker`)."""
        kind = message[0]
        if kind == "task":
            self.stage, self.done, self.total = message[1], 0.0, message[2]
        elif kind == "advance":
            self.done += message[1]
        elif kind == "log":
            self.stage = message[1]
        elif kind == "done":
            self.result, self.state, self.stage = message[1], "done", "done"
        elif kind == "failed":
            self.error, self.state = message[1], "failed"


class Explainer:
    """Runs explanation jobs one at a time, each in a worker process; a bounded queue."""

    def __init__(
        self,
        store_spec: str,
        cache_dir: Path,
        device: str = "auto",
        *,
        settings: StoreSettings | None = None,
        max_waiting: int = MAX_WAITING,
        checkpoints: Checkpoints = ((), ()),
    ) -> None:
        self._store_spec = store_spec
        self._settings = settings
        self._cache_dir = Path(cache_dir)
        self._device = device
        self.max_waiting = max_waiting
        self._checkpoints = checkpoints
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[tuple[Job, ExplainRequest]] = deque()
        self._took: deque[float] = deque(maxlen=8)
        self._cond = threading.Condition()
        self._runner: threading.Thread | None = None
        self._process: Any = None  # the running worker
        self._running = False  # a job left the queue and has not finished
        self._stopping = False

    def get(self, job_id: str) -> Job | None:
        """The job with that id, if it is still kept."""
        with self._cond:
            return self._jobs.get(job_id)

    def check_room(self) -> None:
        """Raise :class:`QueueFull` now if a new job would be refused (before reading an
        upload)."""
        with self._cond:
            self._refuse_when_full()

    def submit(
        self,
        model_id: str,
        image: Path,
        *,
        image_name: str,
        folder: Path,
        image_id: str | None = None,
        box: Box | None = None,
    ) -> Job:
        """Queue an explanation of ``image`` (a server-side path) with ``model_id``.

        ``folder`` (made by :func:`new_job_folder`) becomes the job's: it is deleted when the
        job is dropped, or at once if the job is refused.

        Raises:
            QueueFull: :attr:`max_waiting` jobs wait already, or the server is stopping.
        """
        job = Job(secrets.token_hex(8), model_id, image_name, image_id, folder)
        request = ExplainRequest(
            self._store_spec,
            self._settings,
            self._cache_dir,
            self._device,
            model_id,
            image,
            image_name,
            box,
            folder / "heatmap.png",
            self._checkpoints,
        )
        with self._cond:
            try:
                self._refuse_when_full()
            except QueueFull:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._keep(job)
            self._waiting.append((job, request))
            if self._runner is None:
                self._runner = threading.Thread(
                    target=self._run_jobs, name="explain-runner", daemon=True
                )
                self._runner.start()
            self._cond.notify_all()
        return job

    def _refuse_when_full(self) -> None:
        # the running job counts too: with max_waiting 0 one job still runs, none waits
        pending = len(self._waiting) + int(self._running)
        if self._stopping or pending > self.max_waiting:
            mean = sum(self._took) / len(self._took) if self._took else _FIRST_GUESS_S
            raise QueueFull(pending, max(1, math.ceil(mean * max(pending, 1))))

    def _keep(self, job: Job) -> None:
        """Keep ``job``; drop the oldest finished jobs beyond :data:`KEPT_JOBS`."""
        self._jobs[job.job_id] = job
        for old in list(self._jobs.values()):
            if len(self._jobs) <= KEPT_JOBS:
                break
            if old.state in ("done", "failed"):
                del self._jobs[old.job_id]
                shutil.rmtree(old.folder, ignore_errors=True)

    def _run_jobs(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job, request = self._waiting.popleft()
                job.state, job.stage = "running", "starting the explanation's worker"
                self._running = True
            began = time.monotonic()
            try:
                self._run_in_worker(job, request)
            except Exception:  # the runner must outlive any one job
                log.exception("explaining %s failed", job.image_name)
                job.state, job.error = "failed", "the explanation failed (details in the log)"
            with self._cond:
                self._took.append(time.monotonic() - began)
                self._running = False

    def _run_in_worker(self, job: Job, request: ExplainRequest) -> None:
        """Run one job in a spawned process and follow its messages until it ends."""
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        receive, send = context.Pipe(duplex=False)
        lifeline_read, lifeline = context.Pipe(duplex=False)
        process = context.Process(
            target=explain_in_worker,
            args=(request, send, lifeline_read),
            name=f"explain-{job.job_id}",
            daemon=True,
        )
        with self._cond:
            if self._stopping:
                job.state, job.error = "failed", "the explorer stopped before it ran"
                return
            process.start()
            self._process = process
        send.close()
        lifeline_read.close()
        try:
            self._follow(job, process, receive)
        finally:
            lifeline.close()
            receive.close()
            process.join(_STOP_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()
            with self._cond:
                self._process = None

    def _follow(self, job: Job, process: Any, receive: Connection) -> None:
        """Apply the worker's messages until it sends its outcome or ends without one."""
        while job.state == "running":
            try:
                if receive.poll(0.2):
                    job.apply(receive.recv())
                    continue
                if process.is_alive():
                    continue
            except (EOFError, OSError):
                pass  # the worker's end closed: it ended
            process.join(_STOP_GRACE_S)
            job.state = "failed"
            job.error = (
                "the explorer stopped before the explanation finished"
                if self._stopping
                else f"the explanation's worker ended unexpectedly (exit code {process.exitcode})"
            )

    def stop(self) -> None:
        """Stop the running job's worker and fail the waiting ones (the server is stopping)."""
        with self._cond:
            self._stopping = True
            for job, _ in self._waiting:
                job.state, job.error = "failed", "the explorer stopped before it ran"
            self._waiting.clear()
            process = self._process
            self._cond.notify_all()
        if process is not None and process.is_alive():
            process.terminate()

    def close(self) -> None:
        """Stop, wait for the worker to end, and delete every job's folder."""
        self.stop()
        runner = self._runner
        if runner is not None:
            runner.join(_STOP_GRACE_S * 3)
        with self._cond:
            for job in self._jobs.values():
                shutil.rmtree(job.folder, ignore_errors=True)


def new_job_folder() -> Path:
    """A private temporary folder for one job (the upload, the heat map)."""
    return Path(tempfile.mkdtemp(prefix="explgraph-job-"))


__all__ = ["KEPT_JOBS", "MAX_WAITING", "Explainer", "Job", "QueueFull", "new_job_folder"]
