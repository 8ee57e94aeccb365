"""An explanation's own process: the CNN and the graph run there, and the memory they take goes
back to the system when it ends (a server that explained in its own process kept it).

:func:`explain_in_worker` runs in a fresh process (``multiprocessing`` spawn, so it shares no
threads or handles with the server), opens the store read-only, explains the image, writes the
heat map into the job's folder and sends what happens to the server over a pipe:
``("task", description, total)``, ``("advance", steps)``, ``("log", line)``, then
``("done", result)`` or ``("failed", message)``. It ends itself when the server goes away (its
lifeline pipe closes), so a killed server leaves no worker behind.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from explgraph.core.errors import ExplGraphError
from explgraph.core.progress import Task
from graphstore import GraphStore, open_store
from graphstore.settings import StoreSettings
from miner.data.records import Box

#: Where explaining looks for a model's CNN checkpoint that has moved: the files named
#: (``serve --model-file``, each may be any model's) and the folders searched by file name
#: (:class:`miner.models.identity.CheckpointSearch`, built in the worker, where torch loads).
Checkpoints = tuple[tuple[Path, ...], tuple[Path, ...]]

#: fired patterns listed per layer on the result page
TOP_PER_LAYER = 10
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainRequest:
    """What one explanation needs; it crosses to the worker process pickled."""

    store_spec: str
    settings: StoreSettings | None
    cache_dir: Path
    device: str
    model_id: str
    image: Path  # a server-side path: an upload in the job's folder or a stored image
    image_name: str  # what the page shows, never the server-side path
    box: Box | None
    heatmap: Path  # where the heat map goes
    checkpoints: Checkpoints = ((), ())


class _PipeTask:
    def __init__(self, messages: Connection) -> None:
        self._messages = messages

    def advance(self, steps: float = 1) -> None:
        self._messages.send(("advance", steps))


class PipeProgress:
    """A :class:`explgraph.core.progress.Progress` that sends each bar and line to the server."""

    def __init__(self, messages: Connection) -> None:
        self._messages = messages

    def task(self, description: str, total: float | None) -> AbstractContextManager[Task]:
        """Start a bar: the job's stage becomes ``description``."""
        return self._task(description, total)

    @contextmanager
    def _task(self, description: str, total: float | None) -> Iterator[Task]:
        self._messages.send(("task", description, total))
        yield _PipeTask(self._messages)

    def log(self, message: str) -> None:
        """Show the line as the job's stage."""
        self._messages.send(("log", message))


def explain_in_worker(request: ExplainRequest, messages: Connection, lifeline: Connection) -> None:
    """Explain ``request`` and send its progress and result on ``messages`` (the worker's
    entry point; it returns when the result is sent)."""
    threading.Thread(target=_exit_with_server, args=(lifeline,), daemon=True).start()
    try:
        messages.send(("done", explain(request, PipeProgress(messages))))
    except ExplGraphError as error:
        messages.send(("failed", str(error)))
    except Exception:  # the page says it failed; the details go to the server's log (stderr)
        log.exception("explaining %s with %s failed", request.image_name, request.model_id)
        messages.send(("failed", "the explanation failed (details in the server log)"))


def _exit_with_server(lifeline: Connection) -> None:
    """Block on the lifeline, which the server never writes: it closes when the server ends."""
    with suppress(EOFError, OSError):
        lifeline.recv()
    os._exit(1)


def explain(request: ExplainRequest, progress: PipeProgress) -> dict[str, Any]:
    """The explanation's result page data; the heat map goes to ``request.heatmap``."""
    from miner.models.identity import CheckpointSearch
    from queries.explain import explain_image, write_heatmap_overlay
    from queries.loaded import LoadedGraph

    with open_store(request.store_spec, read_only=True, settings=request.settings) as store:
        progress.log("loading the graph and the CNN")
        loaded = LoadedGraph.open(
            store,
            request.model_id,
            cache_dir=request.cache_dir,
            device=request.device,
            search=CheckpointSearch(*request.checkpoints, strict=False),
            command="the explorer's explain page",
        )
        explanation = explain_image(
            store, loaded, request.image, box=request.box, progress=progress
        )
        progress.log("drawing the heat map")
        write_heatmap_overlay(explanation, request.heatmap)
        result = explanation.to_dict(TOP_PER_LAYER)
        result["image"] = request.image_name  # never the server-side path
        result["width"] = int(explanation.heatmap.shape[1])
        result["height"] = int(explanation.heatmap.shape[0])
        result["n_fired"] = explanation.n_fired
        result["parts"] = _voters(store, request.model_id, result["parts"], explanation)
    return result


def _voters(
    store: GraphStore, model_id: str, parts: list[dict[str, Any]], explanation: Any
) -> list[dict[str, Any]]:
    """Each located part with the fired patterns of its winning template that voted."""
    if not parts:
        return []
    uses = store.query(
        "MATCH (pt:Part)-[:HAS_TEMPLATE]->(t:Template) WHERE pt.model_id = $m "
        "MATCH (t)-[u:USES]->(p:Pattern) RETURN pt.name AS part, t.idx AS template, "
        "p.pattern_id AS pattern_id, u.weight AS weight",
        {"m": model_id},
    )
    fired = {p.pattern_id: p for rows in explanation.fired.values() for p in rows}
    out = []
    for part in parts:
        voters = [
            {
                "pattern_id": row["pattern_id"],
                "ratio": fired[row["pattern_id"]].ratio,
                "weight": row["weight"],
            }
            for row in uses
            if row["part"] == part["name"]
            and row["template"] == part["template"]
            and row["pattern_id"] in fired
        ]
        voters.sort(key=lambda v: -(v["ratio"] * float(v["weight"] or 1.0)))
        out.append({**part, "voters": voters})
    return out


__all__ = ["TOP_PER_LAYER", "ExplainRequest", "PipeProgress", "explain", "explain_in_worker"]
