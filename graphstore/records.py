"""The columnar bundle the miner hands to the store: one mined model as pandas frames.

Columns (``*`` required; every other schema column may be left out and is stored as null):

- ``model``: dict with ``model_id``\\* and any ``Model`` property of :mod:`graphstore.schema`
  (``layers`` a list of layer names; ``params`` a dict or a JSON string).
- ``layers``: ``layer_id``\\*, ``model_id``\\*, ``name``\\*, depth, height, width, stride, rf_size,
  rf_offset, channels, explained_share.
- ``filters``: ``filter_id``\\*, ``model_id``\\*, ``layer``\\* (layer name), ``idx``\\*, n_patterns.
- ``patterns``: ``pattern_id``\\*, ``model_id``\\*, ``layer``\\*, ``filter``\\* (filter index),
  ``idx``\\*, mu_x, mu_y, x, y, sigma, mean_score, diagnosis, off_object.
- ``parents``: ``src``\\* (child pattern id), ``dst``\\* (parent pattern id), dx, dy, sigma, weight.
- ``images``: ``image_id``\\*, path, width, height, dataset, label, split.
- ``fires``: ``src``\\* (image id), ``dst``\\* (pattern id), model_id, x, y, score, rank.

The ``HAS_LAYER``/``HAS_FILTER``/``HAS_PATTERN`` edges are derived from these columns, so the
miner never builds them. Use :func:`layer_id`, :func:`filter_id` and :func:`pattern_id` for ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from explgraph.core.errors import StoreError
from graphstore.schema import NodeSpec, PropertyType, RelSpec, node_spec, rel_spec

_ARROW_TYPES: dict[PropertyType, pa.DataType] = {
    PropertyType.STRING: pa.string(),
    PropertyType.INT64: pa.int64(),
    PropertyType.DOUBLE: pa.float64(),
    PropertyType.BOOL: pa.bool_(),
    PropertyType.STRING_LIST: pa.list_(pa.string()),
}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "layers": ("layer_id", "model_id", "name"),
    "filters": ("filter_id", "model_id", "layer", "idx"),
    "patterns": ("pattern_id", "model_id", "layer", "filter", "idx"),
    "parents": ("src", "dst"),
    "images": ("image_id",),
    "fires": ("src", "dst"),
}


def layer_id(model_id: str, layer: str) -> str:
    """The id of layer ``layer`` of model ``model_id``."""
    return f"{model_id}/{layer}"


def filter_id(model_id: str, layer: str, filter_index: int) -> str:
    """The id of filter ``filter_index`` of ``layer``."""
    return f"{model_id}/{layer}/f{filter_index}"


def pattern_id(model_id: str, layer: str, filter_index: int, pattern_index: int) -> str:
    """The id of pattern ``pattern_index`` of a filter."""
    return f"{model_id}/{layer}/f{filter_index}/p{pattern_index}"


def pattern_ids(model_id: str, layer: str, filters: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The ids of many patterns of one layer at once: element ``i`` is
    ``pattern_id(model_id, layer, filters[i], within[i])`` (vectorised string edits)."""
    filter_text = pd.Series(np.asarray(filters).astype(np.int64).astype(str))
    within_text = pd.Series(np.asarray(within).astype(np.int64).astype(str))
    prefix = f"{model_id}/{layer}/f"
    return filter_text.radd(prefix).str.cat(within_text, sep="/p").to_numpy(dtype=object)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})


@dataclass
class GraphRecords:
    """One mined model, as a model dict and one frame per node label / relationship type."""

    model: dict[str, Any]
    layers: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["layers"]))
    filters: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["filters"]))
    patterns: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["patterns"]))
    parents: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["parents"]))
    images: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["images"]))
    fires: pd.DataFrame = field(default_factory=lambda: _empty(_REQUIRED["fires"]))

    @property
    def model_id(self) -> str:
        """The id every other id of this bundle starts with."""
        value = self.model.get("model_id")
        if not isinstance(value, str) or not value:
            raise StoreError("GraphRecords.model has no 'model_id': set a non-empty string id")
        return value

    def validate(self) -> None:
        """Check columns, keys and references; raise :class:`StoreError` on the first problem.

        Vectorised set-membership checks only, so it costs little next to the write itself.
        """
        model_id = self.model_id
        unknown = set(self.model) - set(node_spec("Model").columns)
        if unknown:
            raise StoreError(
                f"model has unknown properties {sorted(unknown)}: use the Model properties "
                f"of graphstore.schema ({', '.join(node_spec('Model').columns)})"
            )
        self._check_columns()
        for name, key in (
            ("layers", "layer_id"),
            ("filters", "filter_id"),
            ("patterns", "pattern_id"),
            ("images", "image_id"),
        ):
            self._check_keys(name, key, model_id)
        self._check_references()

    def _check_columns(self) -> None:
        """Every frame has its required columns and only columns the schema declares."""
        specs: dict[str, NodeSpec | RelSpec] = {
            "layers": node_spec("Layer"),
            "filters": node_spec("Filter"),
            "patterns": node_spec("Pattern"),
            "parents": rel_spec("PARENT"),
            "images": node_spec("Image"),
            "fires": rel_spec("FIRES"),
        }
        for name, spec in specs.items():
            frame: pd.DataFrame = getattr(self, name)
            missing = [c for c in _REQUIRED[name] if c not in frame.columns]
            if missing:
                raise StoreError(f"records.{name} lacks column(s) {missing}: add them")
            extra = sorted(set(frame.columns) - set(spec.columns))
            if extra:
                raise StoreError(
                    f"records.{name} has column(s) {extra} that the schema does not declare: "
                    f"drop them or use {', '.join(spec.columns)}"
                )

    def _check_keys(self, name: str, key: str, model_id: str) -> None:
        """The ``key`` column of frame ``name`` is set, unique and (but for images) owned by
        ``model_id``."""
        frame = getattr(self, name)
        if frame[key].isna().any():
            raise StoreError(f"records.{name} has rows without a {key}: every row needs one")
        duplicated = frame[key][frame[key].duplicated()]
        if len(duplicated):
            raise StoreError(
                f"records.{name} repeats {key} {duplicated.iloc[0]!r}: ids must be unique"
            )
        if name == "images":
            return
        # the separator matters: "m1" must not claim "m10/..." ids of another model
        owned = frame[key].astype(str).str.startswith(f"{model_id}/")
        if not owned.all():
            bad = frame[key][~owned].iloc[0]
            raise StoreError(
                f"records.{name} id {bad!r} does not start with the model id "
                f"{model_id!r} and '/': build ids with graphstore.records.{key}()"
            )
        foreign = frame["model_id"] != model_id
        if foreign.any():
            raise StoreError(
                f"records.{name} has rows of model {frame['model_id'][foreign].iloc[0]!r}"
                f" in a bundle for {model_id!r}: write one model per GraphRecords"
            )

    def _check_references(self) -> None:
        """Every filter's layer, pattern's filter and edge's end nodes are in the records."""
        self._check_refs("filters", self.filters["layer"], self.layers["name"], "layer name")
        filter_keys = pd.MultiIndex.from_frame(self.filters[["layer", "idx"]].astype(str))
        pattern_keys = pd.MultiIndex.from_frame(self.patterns[["layer", "filter"]].astype(str))
        orphan = ~pattern_keys.isin(filter_keys)
        if orphan.any():
            layer, index = pattern_keys[orphan][0]
            raise StoreError(
                f"records.patterns names filter {index} of layer {layer!r}, which records.filters"
                " lacks: add the filter row"
            )
        ids = self.patterns["pattern_id"]
        self._check_refs("parents", self.parents["src"], ids, "pattern id")
        self._check_refs("parents", self.parents["dst"], ids, "pattern id")
        self._check_refs("fires", self.fires["src"], self.images["image_id"], "image id")
        self._check_refs("fires", self.fires["dst"], ids, "pattern id")

    @staticmethod
    def _check_refs(name: str, values: pd.Series, known: pd.Series, what: str) -> None:
        # Arrow's hash-based is_in: pandas' isin on Arrow-backed strings builds Python lists
        # and took seconds on a VGG-sized graph.
        found = pc.is_in(_as_arrow(values), value_set=_as_arrow(known).unique())
        dangling = ~np.asarray(found.fill_null(False), dtype=bool)
        if dangling.any():
            raise StoreError(
                f"records.{name} refers to unknown {what} {values[dangling].iloc[0]!r}: "
                f"add it to the records or drop the row"
            )

    def model_frame(self, status: str) -> pd.DataFrame:
        """The ``Model`` node as a one-row frame with ``status`` set.

        ``created`` becomes the current UTC time unless the model dict gives it.
        """
        row = dict(self.model)
        row["status"] = status
        if not row.get("created"):
            row["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        params = row.get("params")
        if params is not None and not isinstance(params, str):
            row["params"] = json.dumps(params, sort_keys=True, default=str)
        if row.get("layers") is not None:
            row["layers"] = [str(name) for name in row["layers"]]
        return pd.DataFrame([row])

    def renamed(self, new_id: str) -> GraphRecords:
        """The same model under id ``new_id``: every owned id re-prefixed (images untouched).

        Used to stage a replacement under a temporary id; ids are vectorised string edits.
        """
        old_prefix, new_prefix = f"{self.model_id}/", f"{new_id}/"
        cut = len(old_prefix)

        def swap(values: pd.Series) -> pd.Series:
            return new_prefix + values.astype(str).str.slice(cut)

        def owned(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
            changes = {key: swap(frame[key]) for key in keys}
            if "model_id" in frame.columns:
                changes["model_id"] = pd.Series([new_id] * len(frame), index=frame.index)
            return frame.assign(**changes)

        return GraphRecords(
            model={**self.model, "model_id": new_id},
            layers=owned(self.layers, "layer_id"),
            filters=owned(self.filters, "filter_id"),
            patterns=owned(self.patterns, "pattern_id"),
            parents=owned(self.parents, "src", "dst"),
            images=self.images,
            fires=owned(self.fires, "dst"),
        )

    def hierarchy(self) -> dict[str, pd.DataFrame]:
        """The derived ``HAS_LAYER``, ``HAS_FILTER`` and ``HAS_PATTERN`` edge frames."""
        layer_ids = self.layers[["name", "layer_id"]]
        filters = self.filters[["layer", "idx", "filter_id"]].merge(
            layer_ids, left_on="layer", right_on="name", how="inner"
        )
        keyed = self.filters.assign(_idx=self.filters["idx"].astype("int64"))[
            ["layer", "_idx", "filter_id"]
        ]
        patterns = self.patterns.assign(_idx=self.patterns["filter"].astype("int64"))[
            ["layer", "_idx", "pattern_id"]
        ].merge(keyed, on=["layer", "_idx"], how="inner")
        return {
            "HAS_LAYER": pd.DataFrame(
                {"src": [self.model_id] * len(self.layers), "dst": self.layers["layer_id"].values}
            ),
            "HAS_FILTER": pd.DataFrame(
                {"src": filters["layer_id"].values, "dst": filters["filter_id"].values}
            ),
            "HAS_PATTERN": pd.DataFrame(
                {"src": patterns["filter_id"].values, "dst": patterns["pattern_id"].values}
            ),
        }


def _as_arrow(values: pd.Series) -> pa.Array:
    array = pa.array(values, from_pandas=True)  # zero-copy for Arrow-backed string columns
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array if array.type == pa.string() else pc.cast(array, pa.string())


def to_arrow(
    frame: pd.DataFrame, columns: tuple[str, ...], types: dict[str, PropertyType]
) -> pa.Table:
    """``frame`` as an Arrow table with exactly ``columns`` in order and the schema's types.

    Missing columns become all-null; NaN in a string or integer column becomes null.
    """
    arrays = []
    for name in columns:
        kind = types.get(name, PropertyType.STRING)
        arrow_type = _ARROW_TYPES[kind]
        if name not in frame.columns:
            arrays.append(pa.nulls(len(frame), arrow_type))
            continue
        series = frame[name]
        if kind is PropertyType.STRING_LIST and isinstance(series.dtype, pd.ArrowDtype):
            lists = pa.array(series, from_pandas=True)  # already Arrow lists: zero-copy
            if isinstance(lists, pa.ChunkedArray):
                lists = lists.combine_chunks()
            arrays.append(lists if lists.type == arrow_type else pc.cast(lists, arrow_type))
        elif kind is PropertyType.STRING_LIST:
            values = [None if not isinstance(v, list | tuple) else list(v) for v in series]
            arrays.append(pa.array(values, arrow_type))
        elif kind is PropertyType.STRING:
            arrays.append(_as_arrow(series))
        else:
            arrays.append(pa.array(series, arrow_type, from_pandas=True))
    return pa.Table.from_arrays(arrays, names=list(columns))


def node_table(label: str, frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table in the column order of node label ``label``."""
    spec = node_spec(label)
    types = {p.name: p.type for p in spec.properties}
    _reject_unknown(frame, spec.columns, label)
    if spec.key not in frame.columns:
        raise StoreError(f"{label} rows lack their key column {spec.key!r}: add it")
    return to_arrow(frame, spec.columns, types)


def rel_table(rel_type: str, frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table in the column order of relationship ``rel_type``."""
    spec = rel_spec(rel_type)
    types = {p.name: p.type for p in spec.properties}
    _reject_unknown(frame, spec.columns, rel_type)
    if "src" not in frame.columns or "dst" not in frame.columns:
        raise StoreError(f"{rel_type} rows need 'src' and 'dst' columns (the end nodes' keys)")
    return to_arrow(frame, spec.columns, types)


def _reject_unknown(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    extra = sorted(set(frame.columns) - set(columns))
    if extra:
        raise StoreError(
            f"{what} rows have column(s) {extra} that the schema does not declare: "
            f"use {', '.join(columns)}"
        )


__all__ = [
    "GraphRecords",
    "filter_id",
    "layer_id",
    "node_table",
    "pattern_id",
    "pattern_ids",
    "rel_table",
    "to_arrow",
]
