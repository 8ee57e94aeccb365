"""Explaining an image is long work (the CNN, the graph's inference): it runs as a job.

A request starts a job and gets its id (random, made here); the job page polls the job's state
and progress and shows the result when it is done. One job runs at a time, others queue; the
last :data:`KEPT_JOBS` jobs are kept in memory, uploads only on disk while their job runs.
torch and the explanation code are imported only when the first job runs.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explgraph.core.errors import ExplGraphError
from explgraph.core.progress import Task
from graphstore import GraphStore
from miner.data.records import Box

KEPT_JOBS = 16
#: fired patterns listed per layer on the result page
TOP_PER_LAYER = 10
log = logging.getLogger(__name__)


@dataclass
class Job:
    """One explanation: its input, where it stands, and its result."""

    job_id: str
    model_id: str
    image_name: str
    image_id: str | None  # a stored image, or None for an upload
    state: str = "queued"  # queued, running, done, failed
    stage: str = "waiting for an earlier explanation"
    done: float = 0.0
    total: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    image_png: bytes | None = None
    heatmap_png: bytes | None = None
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


class _JobTask:
    def __init__(self, job: Job) -> None:
        self._job = job

    def advance(self, steps: float = 1) -> None:
        self._job.done += steps


@contextmanager
def _job_task(job: Job, description: str, total: float | None) -> Iterator[Task]:
    """A bar that makes ``description`` the job's stage and counts its progress on the job."""
    job.stage, job.done, job.total = description, 0.0, total
    yield _JobTask(job)


class JobProgress:
    """A :class:`explgraph.core.progress.Progress` that records the current bar on the job."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Make ``description`` the job's stage."""
        return _job_task(self._job, description, total)

    def log(self, message: str) -> None:
        """Show the line as the job's stage."""
        self._job.stage = message


class Explainer:
    """Runs explanation jobs on a worker thread each, one at a time."""

    def __init__(self, store: GraphStore, cache_dir: Path, device: str = "auto") -> None:
        self._store = store
        self._cache_dir = Path(cache_dir)
        self._device = device
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Semaphore(1)

    def get(self, job_id: str) -> Job | None:
        """The job with that id, if it is still kept."""
        with self._lock:
            return self._jobs.get(job_id)

    def submit(
        self,
        model_id: str,
        image: Path,
        *,
        image_name: str,
        image_id: str | None = None,
        box: Box | None = None,
        owned_folder: Path | None = None,
        image_png: bytes | None = None,
    ) -> Job:
        """Start explaining ``image`` (a server-side path) with ``model_id``.

        ``owned_folder`` (an upload's temporary folder) is deleted when the job ends.
        """
        job = Job(secrets.token_hex(8), model_id, image_name, image_id, image_png=image_png)
        with self._lock:
            self._jobs[job.job_id] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
        worker = threading.Thread(
            target=self._run,
            args=(job, image, box, owned_folder),
            name=f"explain-{job.job_id}",
            daemon=True,
        )
        worker.start()
        return job

    def _run(self, job: Job, image: Path, box: Box | None, owned_folder: Path | None) -> None:
        try:
            with self._one_at_a_time:
                job.state, job.stage = "running", "loading the graph and the CNN"
                self._explain(job, image, box)
                job.state, job.stage = "done", "done"
        except ExplGraphError as error:
            job.state, job.error = "failed", str(error)
        except Exception:  # the page says it failed; the details go to the server log only
            log.exception("explaining %s with %s failed", job.image_name, job.model_id)
            job.state, job.error = "failed", "the explanation failed (details in the server log)"
        finally:
            if owned_folder is not None:
                shutil.rmtree(owned_folder, ignore_errors=True)

    def _explain(self, job: Job, image: Path, box: Box | None) -> None:
        from queries.explain import explain_image, write_heatmap_overlay
        from queries.loaded import LoadedGraph

        loaded = LoadedGraph.open(
            self._store, job.model_id, cache_dir=self._cache_dir, device=self._device
        )
        explanation = explain_image(self._store, loaded, image, box=box, progress=JobProgress(job))
        job.stage = "drawing the heat map"
        with tempfile.TemporaryDirectory(prefix="explgraph-web-") as folder:
            heat = Path(folder) / "heatmap.png"
            write_heatmap_overlay(explanation, heat)
            job.heatmap_png = heat.read_bytes()
        result = explanation.to_dict(TOP_PER_LAYER)
        result["image"] = job.image_name  # never the server-side path
        result["width"] = int(explanation.heatmap.shape[1])
        result["height"] = int(explanation.heatmap.shape[0])
        result["n_fired"] = explanation.n_fired
        job.result = result  # parts carry their voters: located as `locate` does


def new_upload_folder() -> Path:
    """A private temporary folder for one upload."""
    return Path(tempfile.mkdtemp(prefix="explgraph-upload-"))


__all__ = ["KEPT_JOBS", "Explainer", "Job", "JobProgress", "new_upload_folder"]
