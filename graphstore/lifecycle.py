"""The model lifecycle: :class:`GraphStore`, the store type callers use.

It writes a mined model (:meth:`~GraphStore.write_model`), replaces, switches, deletes and
repairs models, reports leftovers (:meth:`~GraphStore.garbage`), keeps the write-time answers
of :mod:`graphstore.precompute` up to date and lists / describes the stored models, using only
the engine interface of :mod:`graphstore.engine`. The engine hooks it relies on:

- ``query(..., write=True)`` for every statement it sends, ``ensure_schema``;
- ``_insert_nodes`` / ``_insert_relationships`` / ``_upsert_nodes`` for the bulk loads;
- ``transactional`` with ``_transaction`` (one transaction per replacement), or else
  ``_switch_transaction`` (one transaction around the switch of a staged copy);
- ``_delete_where_model`` / ``_delete_orphans`` (an engine may delete in slices).

Recovery from interrupted writes happens in two places: ``_recover_model`` (before the next
write of that id) and :meth:`GraphStore.repair` (the whole store, by hand).

Replacing a model is atomic. A crash at any instant leaves either the old complete copy or the
new complete one, plus leftovers that the next write of that id, or ``explgraph store repair``
(:meth:`GraphStore.repair`), removes; ``explgraph store info`` reports them
(:meth:`GraphStore.garbage`).

- **LadybugDB** (``transactional``): delete the old copy and write the new one in one write
  transaction; its write-ahead log discards an uncommitted transaction on recovery, and readers
  see the old copy until the commit.
- **Bolt** (transactions must stay small): the new copy is written under the staging id
  ``<id>~staging`` (status ``'staging'``) while the old copy stays readable; when it is
  complete one statement marks it ``'switching'`` — the commit point. From then on the switch is
  rolled *forward*: the old copy is deleted (``Model`` node last), the status becomes
  ``'renaming'``, and the staged nodes get their final ids in batches, the ``Model`` node last
  (status ``'complete'``). A crash before the commit point leaves the old copy plus a staged copy
  that is deleted; after it, the next write or repair finishes the switch. During the few
  seconds of the roll-forward a Bolt reader can find the model missing.

``Image`` nodes are shared between models: they are upserted, and deleting a model removes only
the images that no other model's ``FIRES`` edges still use. Crash points for tests:
:mod:`explgraph.core.faults`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explgraph.core.errors import StoreError, StoreUnavailable, UnknownModel
from explgraph.core.faults import fault_point
from explgraph.core.progress import NULL_PROGRESS, Progress
from graphstore.engine import BulkWrite, StoreEngine
from graphstore.schema import NODES, PRECOMPUTE_VERSION, node_spec

if TYPE_CHECKING:  # pandas and pyarrow load only when a model is written: reads start fast
    import pandas as pd

    from graphstore.records import GraphRecords

log = logging.getLogger(__name__)

#: The suffix of the id a Bolt store writes a replacement under until it is switched in.
STAGING_SUFFIX = "~staging"
#: Nodes renamed per transaction when a staged copy is switched in.
RENAME_BATCH = 10_000

STATUSES = ("mining", "complete")
#: how often list_models / describe_model read again when a switch commits while they read
_CONSISTENT_TRIES = 5

# The counts list_models() and describe_model() add to each model's properties: (count name,
# MATCH pattern, the variable that holds the model id, what count() counts).
_COUNTED = (
    ("n_layers", "(n:Layer)", "n", "n"),
    ("n_filters", "(n:Filter)", "n", "n"),
    ("n_patterns", "(n:Pattern)", "n", "n"),
    ("n_parents", "(:Pattern)-[:PARENT]->(p:Pattern)", "p", "*"),
    ("n_fires", "(:Image)-[f:FIRES]->(:Pattern)", "f", "*"),
)
_COUNT_NAMES = tuple(name for name, *_ in _COUNTED)

# Labels and relationship types that belong to one model; Image is the only shared label.
_MODEL_LABELS = tuple(spec.label for spec in NODES if spec.has_model_id)
# Deletion order: the Model node last, so an interrupted delete never strands nodes without it.
_MODEL_LABELS_MODEL_LAST = (*(label for label in _MODEL_LABELS if label != "Model"), "Model")


def staging_id(model_id: str) -> str:
    """The id a replacement of ``model_id`` is staged under on engines without big transactions."""
    return f"{model_id}{STAGING_SUFFIX}"


#: Images no FIRES edge points at (the start of a statement: add RETURN or DELETE).
_UNUSED_IMAGES = (
    "MATCH (i:Image) OPTIONAL MATCH (i)-[f:FIRES]->(:Pattern) WITH i, count(f) AS uses "
    "WHERE uses = 0 "
)


#: One bulk load of a model's write: ``("node" | "images" | "rel", label or type, frame)``.
WriteStep = tuple[str, str, "pd.DataFrame"]


def _write_steps(records: GraphRecords, paths: pd.DataFrame) -> list[WriteStep]:
    """The bulk loads of one model after its ``Model`` node, nodes before relationships.

    The answers of :mod:`graphstore.precompute` go with them: each pattern's strongest PARENT
    weight and its rank in its layer (``RANKED_CHILD``), each filter's ``busy-filters``
    figures, and ``paths`` (the ``TOP_PATH`` rows, computed from the records under their final
    ids).
    """
    from graphstore.precompute import ranked_children, with_best_parent, with_busy_summaries

    hierarchy = records.hierarchy()
    return [
        ("node", "Layer", records.layers),
        ("node", "Filter", with_busy_summaries(records.filters, records.patterns)),
        ("node", "Pattern", with_best_parent(records.patterns, records.parents)),
        ("images", "Image", records.images),
        ("rel", "HAS_LAYER", hierarchy["HAS_LAYER"]),
        ("rel", "HAS_FILTER", hierarchy["HAS_FILTER"]),
        ("rel", "HAS_PATTERN", hierarchy["HAS_PATTERN"]),
        ("rel", "PARENT", records.parents),
        ("rel", "FIRES", records.fires.assign(model_id=records.model_id)),
        ("rel", "RANKED_CHILD", ranked_children(records)),
        ("rel", "TOP_PATH", paths),
    ]


def _staged_paths(paths: pd.DataFrame, model_id: str, staging: str) -> pd.DataFrame:
    """``paths`` with its end nodes under the staging id; the stored path lists keep the final
    ids, which the staged nodes get at the switch."""
    cut = len(model_id) + 1
    return paths.assign(
        src=f"{staging}/" + paths["src"].astype(str).str.slice(cut),
        dst=f"{staging}/" + paths["dst"].astype(str).str.slice(cut),
    )


def _staged_step(step: WriteStep, model_id: str, staging: str) -> WriteStep:
    """An extra load of ``model_id`` under the staging id: its own ids (the node key and
    ``model_id``; an edge end that starts with ``<model_id>/``, or is the model itself, as
    ``HAS_EXPLAINER``'s source) re-prefixed, others' kept."""
    kind, name, frame = step
    prefix, cut = f"{model_id}/", len(model_id) + 1

    def swap(values: pd.Series) -> pd.Series:
        text = values.astype(str)
        owned = text.str.startswith(prefix)
        swapped = text.where(~owned, f"{staging}/" + text.str.slice(cut))
        return swapped.where(text != model_id, staging)

    if kind == "rel":
        return kind, name, frame.assign(src=swap(frame["src"]), dst=swap(frame["dst"]))
    changes = {node_spec(name).key: swap(frame[node_spec(name).key])}
    if "model_id" in frame.columns:
        changes["model_id"] = (
            frame["model_id"].astype(str).where(frame["model_id"].astype(str) != model_id, staging)
        )
    return kind, name, frame.assign(**changes)


class GraphStore(StoreEngine):
    """A graph store holding any number of mined models. Use as a context manager."""

    def info(self) -> dict[str, Any]:
        """What ``explgraph store info`` prints: engine, location, access mode, model count."""
        return {
            "engine": self.engine,
            "store": self.spec,
            "read_only": self.read_only,
            "models": len(self.list_models()),
            "writers": "; ".join(self.live_writers()) or "none",
            "leftovers": _describe_garbage(self.garbage()),
            "interrupted writes undone": _describe_recoveries(self.recoveries()),
        }

    # writes of single labels and types, which may make the FLAGGED edges stale ---------------

    def write_nodes(self, label: str, frame: pd.DataFrame) -> None:
        """Upsert ``frame`` (the key column plus any declared properties) as ``label`` nodes."""
        self._require_write("write nodes")
        from graphstore.records import node_table

        given = [name for name in frame.columns if name != node_spec(label).key]
        self._upsert_nodes(label, node_table(label, frame), given)
        if label == "Pattern" and "diagnosis" in given:
            self._refresh_flags()

    def refresh_after_write(self, cypher: str, params: Mapping[str, Any] | None = None) -> None:
        """Rebuild the write-time answers a user's write statement may have made stale.

        Only the ``FLAGGED`` edges can go stale this way (the others derive from what
        ``write_model`` alone writes): they are rebuilt when the statement or its parameters
        mention ``diagnosis``, which costs one scan of the patterns.
        """
        self._require_write("refresh the write-time answers")
        if "diagnosis" in cypher.lower() or "diagnosis" in repr(dict(params or {})).lower():
            self._refresh_flags()

    def _refresh_flags(self) -> None:
        """Rebuild the ``FLAGGED`` edges (model -> each pattern whose diagnosis is a flaw) from
        ``Pattern.diagnosis``, in one transaction, so ``diagnosed-patterns`` never scans the
        patterns. Set-based and idempotent; runs whenever diagnoses are written."""
        with self._transaction() if self.transactional else self._switch_transaction():
            self.query("MATCH (:Model)-[e:FLAGGED]->(:Pattern) DELETE e", write=True)
            self.query(
                "MATCH (p:Pattern) WHERE p.diagnosis IS NOT NULL AND p.diagnosis <> 'ok' "
                "MATCH (m:Model) WHERE m.model_id = p.model_id CREATE (m)-[:FLAGGED]->(p)",
                write=True,
            )

    def write_relationships(self, rel_type: str, frame: pd.DataFrame) -> None:
        """Upsert ``frame`` (``src``, ``dst`` keys plus declared properties) as edges."""
        self._require_write("write relationships")
        from graphstore.records import rel_table

        self._upsert_relationships(rel_type, rel_table(rel_type, frame))

    # writing a model: atomic replacement of any earlier copy ---------------------------------

    def write_model(
        self,
        records: GraphRecords,
        *,
        progress: Progress = NULL_PROGRESS,
        extras: Sequence[WriteStep] = (),
    ) -> None:
        """Write one mined model in bulk, atomically replacing any earlier copy with the same id.

        A crash at any instant leaves either the old complete copy or the new complete one
        (plus leftovers that the next write and :meth:`repair` remove); see the module docstring.
        ``extras``: more ``("node" | "rel", label or type, frame)`` loads of this model (its
        AOGs, comparisons: :mod:`graphstore.pack`), written with it as part of the same copy.

        Raises:
            StoreError: the records do not validate, or the engine refused the write.
        """
        self._require_write("write a model")
        records.validate()
        model_id = records.model_id
        if STAGING_SUFFIX in model_id:
            raise StoreError(
                f"model id {model_id!r} contains {STAGING_SUFFIX!r}, which the store reserves "
                "for copies being written: choose another id"
            )
        self.ensure_schema()
        from graphstore.precompute import top_paths

        paths = top_paths(records)
        steps = _write_steps(records, paths)
        total = sum(len(frame) for _, _, frame in (*steps, *extras)) + 2
        with progress.task(f"writing {model_id}", total) as bar, self._model_lock(model_id):
            if self.transactional:
                self._replace_in_one_transaction(records, [*steps, *extras], bar.advance)
            else:
                self._replace_by_staging(records, paths, bar.advance, extras)
            fault_point("replace:done")
            bar.advance()

    def _replace_in_one_transaction(
        self,
        records: GraphRecords,
        steps: list[tuple[str, str, pd.DataFrame]],
        advance: Callable[[int], Any],
    ) -> None:
        """Delete the old copy and write the new one in one transaction (LadybugDB)."""
        model_id = records.model_id
        operation = "replace" if self._model_exists(model_id) else "write"
        verify = functools.partial(self._verify_copy, records)
        with self._transaction(bulk=BulkWrite(operation, model_id, verify)):
            self._delete_model_data(model_id)
            self._write_copy(records, "complete", steps, advance)
            fault_point("replace:before-switch")
        fault_point("replace:switch-marked")

    def _replace_by_staging(
        self,
        records: GraphRecords,
        paths: pd.DataFrame,
        advance: Callable[[int], Any],
        extras: Sequence[WriteStep] = (),
    ) -> None:
        """Write the new copy under the staging id, mark it (the commit point), switch it in."""
        model_id = records.model_id
        self._recover_model(model_id)
        staging = staging_id(model_id)
        staged = records.renamed(staging)
        try:
            staged_steps = _write_steps(staged, _staged_paths(paths, model_id, staging))
            staged_steps += [_staged_step(step, model_id, staging) for step in extras]
            self._write_copy(staged, "staging", staged_steps, advance)
        except BaseException:
            # best effort: a Python-level failure cleans up; a crash leaves it to repair
            with contextlib.suppress(Exception):
                self._delete_model_data(staging)
            raise
        fault_point("replace:before-switch")
        self._mark_switching(staging)  # the commit point
        fault_point("replace:switch-marked")
        self._finish_switch(staging)

    def _mark_switching(self, staging: str) -> None:
        """Mark the complete staged copy ``'switching'``, only while this writer still holds
        the model's lock (Bolt: its lease); otherwise keep the old copy and say why."""
        prefix, params = self._while_writer()
        rows = self.query(
            prefix + "MATCH (m:Model {model_id: $id}) SET m.status = 'switching' "
            "RETURN m.model_id AS id",
            {"id": staging, **params},
            write=True,
        )
        if not rows:
            model_id = staging[: -len(STAGING_SUFFIX)]
            raise StoreError(
                f"the write of {model_id!r} lost its lease before the switch (another writer "
                "took it after it expired): the old copy is kept; run the write again"
            )

    def _verify_copy(self, records: GraphRecords) -> None:
        """Raise when the stored copy of ``records`` is not complete with exactly its counts."""
        expected = _expected_counts(records)
        model_id = records.model_id
        found = self._counts(model_id).get(model_id, {})
        counts = {name: int(found.get(name, 0)) for name in expected}
        status = self._status(model_id)
        if status != "complete" or counts != expected:
            raise StoreError(
                f"the new copy of {model_id!r} is not complete after the commit (status "
                f"{status}, counts {counts}, expected {expected})"
            )

    def _write_copy(
        self,
        records: GraphRecords,
        status: str,
        steps: list[tuple[str, str, pd.DataFrame]],
        advance: Callable[[int], Any],
    ) -> None:
        """Insert every node and edge of ``records`` under its own (fresh) ids."""
        from graphstore.records import node_table, rel_table

        counts = {**_expected_counts(records), "precomputed": PRECOMPUTE_VERSION}
        model = records.model_frame(status).assign(**counts)
        self._insert_nodes("Model", node_table("Model", model))
        fault_point("write:model-node")
        advance(1)
        nodes_done = False
        for kind, name, frame in steps:
            if kind == "rel" and not nodes_done:
                fault_point("write:nodes")
                nodes_done = True
            if len(frame) == 0:
                continue
            if kind == "node":
                self._insert_nodes(name, node_table(name, frame))
            elif kind == "images":
                given = [c for c in frame.columns if c != node_spec(name).key]
                self._upsert_nodes(name, node_table(name, frame), given)
            else:
                self._insert_relationships(name, rel_table(name, frame))
            advance(len(frame))

    # write-time answers for models written before they existed --------------------------

    def backfill_precomputed(self) -> list[str]:
        """Add the answers of :mod:`graphstore.precompute` to every model written without them
        (``Model.precomputed`` null: an older version wrote it); returns their ids.

        Idempotent: a model's derived edges are deleted before they are written, and the
        model is marked last (one transaction on LadybugDB), so an interrupted backfill is
        redone by the next writable open.
        """
        if self.read_only:
            return []
        rows = self.query(
            "MATCH (m:Model) WHERE m.precomputed IS NULL RETURN m.model_id AS id ORDER BY id"
        )
        done = []
        for model_id in (str(row["id"]) for row in rows):
            if model_id.endswith(STAGING_SUFFIX):
                continue  # a copy being written: the write itself carries the answers
            if self.transactional:
                with self._transaction(bulk=BulkWrite("backfill", model_id)):
                    self._backfill(model_id)
            else:
                try:
                    with self._model_lock(model_id):
                        self._backfill(model_id)
                except StoreUnavailable:  # being replaced: the new copy carries the answers
                    continue
            done.append(model_id)
            log.info("added the write-time answers to %s, written by an older version", model_id)
        if done:
            self._refresh_flags()
        return done

    def _stored_records(self, model_id: str) -> GraphRecords:
        """The columns of a stored model that :mod:`graphstore.precompute` reads."""
        import pandas as pd

        from graphstore.records import GraphRecords

        def frame(cypher: str, columns: list[str]) -> pd.DataFrame:
            found = self.query(cypher, {"id": model_id})
            return pd.DataFrame({c: [row[c] for row in found] for c in columns})

        return GraphRecords(
            model={"model_id": model_id},
            layers=frame(
                "MATCH (l:Layer) WHERE l.model_id = $id "
                "RETURN l.layer_id AS layer_id, l.name AS name",
                ["layer_id", "name"],
            ),
            filters=frame(
                "MATCH (f:Filter) WHERE f.model_id = $id "
                "RETURN f.filter_id AS filter_id, f.layer AS layer, f.idx AS idx",
                ["filter_id", "layer", "idx"],
            ),
            patterns=frame(
                "MATCH (p:Pattern) WHERE p.model_id = $id RETURN p.pattern_id AS pattern_id, "
                "p.layer AS layer, p.filter AS filter, p.x AS x, p.y AS y, "
                "p.mean_score AS mean_score",
                ["pattern_id", "layer", "filter", "x", "y", "mean_score"],
            ),
            parents=frame(
                "MATCH (c:Pattern)-[r:PARENT]->(q:Pattern) WHERE c.model_id = $id "
                "RETURN c.pattern_id AS src, q.pattern_id AS dst, r.weight AS weight",
                ["src", "dst", "weight"],
            ),
        )

    def _backfill(self, model_id: str) -> None:
        """Write the answers of :mod:`graphstore.precompute` for one stored model, then mark it."""
        from graphstore.precompute import (
            ranked_children,
            top_paths,
            with_best_parent,
            with_busy_summaries,
        )
        from graphstore.records import node_table, rel_table

        records = self._stored_records(model_id)
        patterns = with_best_parent(records.patterns, records.parents)
        if "best_parent_weight" in patterns.columns:
            best = patterns[["pattern_id", "best_parent_weight"]]
            self._upsert_nodes("Pattern", node_table("Pattern", best), ["best_parent_weight"])
        busy = with_busy_summaries(records.filters, records.patterns)
        columns = ["busy_active", "busy_cells", "busy_mean_score"]
        self._upsert_nodes("Filter", node_table("Filter", busy[["filter_id", *columns]]), columns)
        self.query(
            "MATCH (l:Layer)-[e:RANKED_CHILD]->(:Pattern) WHERE l.model_id = $id DELETE e",
            {"id": model_id},
            write=True,
        )
        self.query(
            "MATCH (p:Pattern)-[e:TOP_PATH]->(:Pattern) WHERE p.model_id = $id DELETE e",
            {"id": model_id},
            write=True,
        )
        for rel_type, rows in (
            ("RANKED_CHILD", ranked_children(records)),
            ("TOP_PATH", top_paths(records)),
        ):
            if len(rows):
                self._insert_relationships(rel_type, rel_table(rel_type, rows))
        self.query(
            "MATCH (m:Model {model_id: $id}) SET m.precomputed = $version",
            {"id": model_id, "version": PRECOMPUTE_VERSION},
            write=True,
        )

    # the staging protocol (engines without big transactions) ----------------------------

    def _set_status(self, model_id: str, status: str) -> None:
        self.query(
            "MATCH (m:Model {model_id: $id}) SET m.status = $status",
            {"id": model_id, "status": status},
            write=True,
        )

    def _status(self, model_id: str) -> str | None:
        rows = self.query(
            "MATCH (m:Model {model_id: $id}) RETURN m.status AS status", {"id": model_id}
        )
        return rows[0]["status"] if rows else None

    def _recover_model(self, model_id: str) -> None:
        """Finish or remove what an interrupted write or delete of ``model_id`` left behind."""
        staging = staging_id(model_id)
        status = self._status(staging)
        if status in ("switching", "renaming"):
            log.info("finishing the interrupted switch of %s (%s)", staging, status)
            self._finish_switch(staging)
        elif status is not None or self._has_data(staging):
            log.info("removing the staged copy %s left by an interrupted write", staging)
            self._delete_model_data(staging)
        unfinished = self._status(model_id)
        if unfinished in ("deleting", "mining"):
            log.info("removing the unfinished model %s (%s)", model_id, unfinished)
            self._delete_model_data(model_id)

    def _finish_switch(self, staging: str) -> None:
        """Roll a marked staging copy forward: delete the old copy, rename staging to the id."""
        with self._switch_transaction():
            self._switch(staging)

    def _switch(self, staging: str) -> None:
        model_id = staging[: -len(STAGING_SUFFIX)]
        if self._status(staging) == "switching":
            self._delete_model_data(model_id)
            self._set_status(staging, "renaming")
            fault_point("replace:old-deleted")
        cut = len(staging)
        for spec in NODES:
            if not spec.has_model_id or spec.label == "Model":
                continue
            self._rename_where_model(
                f"MATCH (n:{spec.label}) WHERE n.model_id = $staging WITH n LIMIT {RENAME_BATCH} "
                f"SET n.{spec.key} = $id + substring(n.{spec.key}, $cut), n.model_id = $id "
                "RETURN count(*) AS moved",
                {"staging": staging, "id": model_id, "cut": cut},
            )
        self._rename_where_model(
            "MATCH (:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $staging "
            f"WITH f LIMIT {RENAME_BATCH} SET f.model_id = $id RETURN count(*) AS moved",
            {"staging": staging, "id": model_id},
        )
        self.query(
            "MATCH (m:Model {model_id: $staging}) SET m.model_id = $id, m.status = 'complete'",
            {"staging": staging, "id": model_id},
            write=True,
        )

    def _rename_where_model(self, statement: str, params: dict[str, Any]) -> None:
        while True:
            rows = self.query(statement, params, write=True)
            fault_point("replace:renaming")
            if not rows or int(rows[0]["moved"]) == 0:
                return

    def _has_data(self, model_id: str) -> bool:
        return any(
            self.query(
                f"MATCH (n:{spec.label}) WHERE n.model_id = $id RETURN n.model_id AS id LIMIT 1",
                {"id": model_id},
            )
            for spec in NODES
            if spec.has_model_id
        )

    # the models: status, list, describe ------------------------------------------------------

    def set_model_status(self, model_id: str, status: str) -> None:
        """Mark ``model_id`` as ``'mining'`` or ``'complete'``."""
        if status not in STATUSES:
            raise StoreError(f"unknown model status {status!r}: use one of {', '.join(STATUSES)}")
        rows = self.query(
            "MATCH (m:Model {model_id: $id}) SET m.status = $status RETURN m.model_id AS id",
            {"id": model_id, "status": status},
            write=True,
        )
        if not rows:
            raise self._unknown(model_id)

    def list_models(self) -> list[dict[str, Any]]:
        """Every model with its status and node / edge counts, sorted by id.

        The counts come from the same state of the store as the models: on an engine whose
        replacements commit in several transactions (Bolt) the models are read again after the
        counts, and everything is read again when a switch committed in between.
        """
        for _ in range(_CONSISTENT_TRIES):
            models = self._model_rows(
                "MATCH (m:Model) RETURN m.model_id AS model_id, m.architecture AS architecture, "
                "m.status AS status, m.created AS created, m.n_images AS n_images",
                {},
            )
            models = [row for row in models if not row["model_id"].endswith(STAGING_SUFFIX)]
            if not models:
                return []
            counts = self._counts()
            if self._unchanged(models, "MATCH (m:Model)", {}):
                break
        for row in models:
            row.update(counts.get(row["model_id"], {}))
            for name in _COUNT_NAMES:
                row.setdefault(name, 0)
        return sorted(models, key=lambda row: str(row["model_id"]))

    def describe_model(self, model_id: str) -> dict[str, Any]:
        """All properties of ``model_id`` (``params`` parsed into a dict), its per-layer summary
        and counts (read from one state of the store, as :meth:`list_models`).

        Raises:
            UnknownModel: no such model; the message lists the known ids.
            StoreError: the model's stored parameters are not valid JSON.
        """
        match, params = "MATCH (m:Model {model_id: $id})", {"id": model_id}
        for _ in range(_CONSISTENT_TRIES):
            rows = self._model_rows(
                f"{match} RETURN " + ", ".join(f"m.{n} AS {n}" for n in _model_columns()), params
            )
            if not rows:
                raise self._unknown(model_id)
            layers = self.query(
                "MATCH (l:Layer) WHERE l.model_id = $id RETURN l.name AS name, l.depth AS depth, "
                "l.height AS height, l.width AS width, l.stride AS stride, "
                "l.channels AS channels ORDER BY depth",
                params,
            )
            counts = self._counts(model_id).get(model_id, {})
            if self._unchanged(rows, match, params):
                break
        description = dict(rows[0])
        description["params"] = model_params(model_id, description.get("params"))
        description["layer_summary"] = layers
        description.update({name: counts.get(name, 0) for name in _COUNT_NAMES})
        return description

    def _model_rows(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """``statement``'s rows; on Bolt each with its Model node's element id as ``_node`` (a
        replacement's switch gives the model another node), for :meth:`_unchanged`."""
        if self.transactional:  # one transaction per write: nothing to compare
            return self.query(statement, params)
        return self.query(statement + ", elementId(m) AS _node", params)

    def _unchanged(self, rows: list[dict[str, Any]], match: str, params: dict[str, Any]) -> bool:
        """Whether the (non-staging) Model nodes ``match`` finds are still those behind
        ``rows``; drops the rows' ``_node``."""
        if self.transactional:
            return True
        now = self.query(f"{match} RETURN m.model_id AS model_id, elementId(m) AS node", params)
        after = sorted(
            (str(row["model_id"]), str(row["node"]))
            for row in now
            if not str(row["model_id"]).endswith(STAGING_SUFFIX)
        )
        before = sorted((str(row["model_id"]), str(row.pop("_node", None))) for row in rows)
        return before == after

    # deleting a model, leftovers of interrupted writes, repair -------------------------------

    def delete_model(self, model_id: str) -> None:
        """Delete ``model_id`` with everything it owns; keep images other models still use.

        Atomic on LadybugDB (one transaction). On Bolt the model is first marked ``'deleting'``
        and its ``Model`` node goes last, so an interrupted delete is finished by the next
        write of that id or by :meth:`repair`, and never leaves nodes without their model.

        Raises:
            UnknownModel: no such model.
        """
        self._require_write("delete a model")
        if not self._model_exists(model_id):
            raise self._unknown(model_id)
        if self.transactional:
            with self._transaction():
                fault_point("delete:marked")
                self._delete_model_data(model_id)
            return
        with self._model_lock(model_id):
            self._set_status(model_id, "deleting")
            fault_point("delete:marked")
            self._delete_model_data(model_id)

    def _delete_model_data(self, model_id: str) -> None:
        """Delete every node and edge of ``model_id`` (in any state), the ``Model`` node last.

        Images that only this model uses go first (their ``FIRES`` edges with them), so an
        interruption never strands an image that no model uses.
        """
        self.query(
            # OPTIONAL MATCH + count rather than an EXISTS subquery: both engines accept it
            "MATCH (i:Image)-[f:FIRES]->(:Pattern) WHERE f.model_id = $id "
            "WITH DISTINCT i OPTIONAL MATCH (i)-[g:FIRES]->(:Pattern) WHERE g.model_id <> $id "
            "WITH i, count(g) AS others WHERE others = 0 DETACH DELETE i",
            {"id": model_id},
            write=True,
        )
        first = True
        for label in _MODEL_LABELS_MODEL_LAST:
            self._delete_where_model(label, model_id)
            if first:
                fault_point("delete:partial")
                first = False

    def garbage(self) -> dict[str, Any]:
        """What interrupted writes left: copies being staged, unfinished models, orphans.

        ``staging``: staged copies (``<id>~staging``) with their status; ``unfinished``:
        models marked ``'mining'`` or ``'deleting'``; ``orphans``: per label, nodes (and
        ``FIRES`` edges) whose ``model_id`` names no ``Model`` node.
        """
        models = self.query("MATCH (m:Model) RETURN m.model_id AS id, m.status AS status")
        staging = {r["id"]: r["status"] for r in models if r["id"].endswith(STAGING_SUFFIX)}
        unfinished = {
            r["id"]: r["status"]
            for r in models
            if not r["id"].endswith(STAGING_SUFFIX) and r["status"] in ("mining", "deleting")
        }
        # a copy being renamed owns the nodes already renamed to its final id
        owners = [r["id"] for r in models] + [
            sid[: -len(STAGING_SUFFIX)]
            for sid, status in staging.items()
            if status in ("switching", "renaming")
        ]
        orphans: dict[str, int] = {}
        for spec in NODES:
            if not spec.has_model_id or spec.label == "Model":
                continue
            rows = self.query(
                f"MATCH (n:{spec.label}) WHERE NOT n.model_id IN $ids RETURN count(n) AS c",
                {"ids": owners},
            )
            if rows and int(rows[0]["c"]):
                orphans[spec.label] = int(rows[0]["c"])
        rows = self.query(
            "MATCH (:Image)-[f:FIRES]->(:Pattern) WHERE NOT f.model_id IN $ids "
            "RETURN count(f) AS c",
            {"ids": owners},
        )
        if rows and int(rows[0]["c"]):
            orphans["FIRES"] = int(rows[0]["c"])
        # every mined image has FIRES edges, so an image without any was left by a Bolt write
        # killed between its Image nodes and their FIRES edges
        rows = self.query(_UNUSED_IMAGES + "RETURN count(i) AS c")
        if rows and int(rows[0]["c"]):
            orphans["Image"] = int(rows[0]["c"])
        return {"staging": staging, "unfinished": unfinished, "orphans": orphans}

    def repair(self) -> dict[str, Any]:
        """Finish interrupted switches and deletes, remove staged copies and orphans.

        Returns what :meth:`garbage` found before the repair, with ``recovered``: the
        interrupted writes the engine undid by itself (:meth:`recoveries`, cleared now that
        they are reported). Run it when no other process is writing the store (LadybugDB's
        lock guarantees that; a Bolt server cannot).
        """
        self._require_write("repair the store")
        writers = self.live_writers()
        if writers:
            raise StoreUnavailable(
                f"models are being written ({'; '.join(writers)}): run the repair when those "
                "writes have finished"
            )
        found = self.garbage()
        if self.transactional:
            with self._transaction():
                self._repair(found)
        else:
            self._repair(found)
        found["recovered"] = self.recoveries()
        self.forget_recoveries()
        return found

    def _repair(self, found: dict[str, Any]) -> None:
        for sid, status in found["staging"].items():
            if status in ("switching", "renaming"):
                self._finish_switch(sid)
            else:
                self._delete_model_data(sid)
        for model_id in found["unfinished"]:
            self._delete_model_data(model_id)
        if not found["orphans"]:
            return
        owners = [r["id"] for r in self.query("MATCH (m:Model) RETURN m.model_id AS id")]
        self.query(
            "MATCH (:Image)-[f:FIRES]->(:Pattern) WHERE NOT f.model_id IN $ids DELETE f",
            {"ids": owners},
            write=True,
        )
        for label in _MODEL_LABELS_MODEL_LAST:
            if label != "Model":
                self._delete_orphans(label, owners)
        self.query(_UNUSED_IMAGES + "DETACH DELETE i", write=True)

    # helpers ---------------------------------------------------------------------------------

    def _model_exists(self, model_id: str) -> bool:
        return bool(
            self.query("MATCH (m:Model {model_id: $id}) RETURN m.model_id AS id", {"id": model_id})
        )

    def _unknown(self, model_id: str) -> UnknownModel:
        known = [row["id"] for row in self.query("MATCH (m:Model) RETURN m.model_id AS id")]
        listing = ", ".join(sorted(known)) if known else "none yet (mine one with `explgraph mine`)"
        return UnknownModel(f"no model {model_id!r} in this store; known models: {listing}")

    def _counts(self, model_id: str | None = None) -> dict[str, dict[str, int]]:
        """Per model: numbers of layers, filters, patterns, PARENT and FIRES edges."""
        params = {"id": model_id} if model_id is not None else {}
        counts: dict[str, dict[str, int]] = {}
        for name, pattern, owner, counted in _COUNTED:
            where = f"WHERE {owner}.model_id = $id " if model_id is not None else ""
            for row in self.query(
                f"MATCH {pattern} {where}"
                f"RETURN {owner}.model_id AS model_id, count({counted}) AS c",
                params,
            ):
                counts.setdefault(row["model_id"], {})[name] = int(row["c"])
        return counts


def _expected_counts(records: GraphRecords) -> dict[str, int]:
    """The counts a complete stored copy of ``records`` has (as :meth:`GraphStore._counts`)."""
    return {
        "n_layers": len(records.layers),
        "n_filters": len(records.filters),
        "n_patterns": len(records.patterns),
        "n_parents": len(records.parents),
        "n_fires": len(records.fires),
    }


def model_params(model_id: str, text: str | None) -> dict[str, Any]:
    """The ``params`` JSON of a Model node as a dict (``{}`` when none was stored).

    Raises:
        StoreError: the text is not a JSON object.
    """
    try:
        params = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise StoreError(
            f"the stored parameters of {model_id!r} are not valid JSON ({error.msg}): "
            "mine the model again"
        ) from None
    if not isinstance(params, dict):
        raise StoreError(f"the stored parameters of {model_id!r} are not a JSON object")
    return params


def _describe_garbage(found: dict[str, Any]) -> str:
    parts = [f"staged copy {sid} ({status})" for sid, status in found["staging"].items()]
    parts += [f"unfinished model {mid} ({status})" for mid, status in found["unfinished"].items()]
    parts += [f"{count} orphan {label}" for label, count in found["orphans"].items()]
    if not parts:
        return "none"
    return "; ".join(parts) + " (remove with `explgraph store repair`)"


def _describe_recoveries(lines: list[str]) -> str:
    if not lines:
        return "none"
    return " | ".join(lines) + " (`explgraph store repair` clears this log)"


def _model_columns() -> tuple[str, ...]:
    return next(spec for spec in NODES if spec.label == "Model").columns


__all__ = [
    "RENAME_BATCH",
    "STAGING_SUFFIX",
    "STATUSES",
    "GraphStore",
    "model_params",
    "staging_id",
]
