"""Strict JSON documents: pydantic models whose errors read as one line naming the field.

The annotation file (:mod:`miner.data.annotations`) and the shots file (:mod:`queries.aog.shots`)
are validated by pydantic models built on :class:`StrictModel`: unknown keys are errors (a typo
such as ``"lable"`` or ``"bbox"`` must not load as "no label" / "no box"), and numbers are not
coerced from strings or booleans. :func:`validate` turns pydantic's error list into the one
line the rest of explgraph prints: where (``images[3].lable``), what is wrong, and what to do,
with a "did you mean" suggestion for an unknown key.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ConfigDict, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A frozen model that refuses keys it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def finite_number(value: Any) -> float:
    """``value`` as a float if it is a finite JSON number (``true``/``false`` are not numbers)."""
    # bool is an int subclass in Python, but true/false is never a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value!r}")
    return float(value)


def optional_box(value: Any) -> tuple[float, float, float, float] | None:
    """``value`` as an object box ``(x0, y0, x1, y1)``: a JSON list of four finite numbers with
    ``x1 > x0`` and ``y1 > y0``; ``None`` (no box) stays ``None``."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"must be a list [x0, y0, x1, y1], not {value!r}")
    x0, y0, x1, y1 = (finite_number(v) for v in value)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"{value!r} is empty or inverted: need x1 > x0 and y1 > y0")
    return (x0, y0, x1, y1)


def image_file(value: Any) -> str:
    """``value`` as an image path: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError("is missing or not a string: give the image path")
    return value


def location(loc: Sequence[int | str]) -> str:
    """``("images", 3, "box")`` → ``images[3].box``; a lone top-level key: ``"format"``."""
    if len(loc) == 1 and isinstance(loc[0], str):
        return f'"{loc[0]}"'
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes and containers an annotation can hold (Optional and unions opened)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [inner for arg in typing.get_args(annotation) for inner in _unwrap(arg)]
    return [annotation]


def _known_keys(root: type[BaseModel], parent: Sequence[int | str]) -> list[str]:
    """The keys the model at ``parent`` (a location below ``root``) declares; [] if unknown."""
    current: list[Any] = [root]
    for part in parent:
        following: list[Any] = []
        for kind in current:
            origin = typing.get_origin(kind)
            if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(part, str):
                field = kind.model_fields.get(part)
                if field is not None:
                    following.extend(_unwrap(field.annotation))
            elif origin in (list, tuple) and isinstance(part, int):
                following.extend(_unwrap(typing.get_args(kind)[0]))
            elif origin is dict:
                following.extend(_unwrap(typing.get_args(kind)[1]))
        current = following
    keys = [
        name
        for kind in current
        if isinstance(kind, type) and issubclass(kind, BaseModel)
        for name in kind.model_fields
    ]
    return keys


def _message(error: Any, root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    where = location(loc) if loc else "the top level"
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(root, loc[:-1])
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if close:
            return f'{where} is not a known key; did you mean "{close[0]}"? Rename it'
        listed = f" (known: {', '.join(known)})" if known else ""
        return f"{where} is not a known key{listed}; rename or remove it"
    if kind == "missing":
        return f"{where} is missing; add it"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{where} must be an object"
    if kind == "value_error":
        text = str(error["ctx"]["error"]) if "ctx" in error else str(error["msg"])
        return f"{where} {text}"
    return f"{where}: {error['msg']}"


def validate(
    model: type[Model],
    document: Any,
    *,
    prefix: Callable[[Sequence[int | str]], str] = lambda loc: "",
) -> Model:
    """``document`` validated as ``model``; on failure a ``ValueError`` with one line.

    Unknown keys are reported first (a misspelt key also makes its real name "missing").
    ``prefix(loc)`` is put before the message, e.g. ``"line 12: "`` for the entry at ``loc``.

    Raises:
        ValueError: the first problem, as ``<prefix><where> <what is wrong>; <what to do>``.
    """
    try:
        return model.model_validate(document)
    except ValidationError as failure:
        errors = failure.errors()
        errors.sort(key=lambda error: error["type"] != "extra_forbidden")  # stable
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise ValueError(f"{prefix(tuple(first['loc']))}{_message(first, model)}{more}") from None


__all__ = ["StrictModel", "finite_number", "location", "validate"]
