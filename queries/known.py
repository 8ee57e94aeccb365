"""Whether the names a canned query was given exist, so an empty answer is never a typo.

A canned query that names an unknown model, layer, image or pattern matches nothing and would
print ``(no rows)`` with success. :func:`check_names` runs after an empty answer only (a query
that returned rows named things that exist) and turns such a name into one line naming a few
that do exist and the command that lists them all.

Example:
    >>> from graphstore import open_store
    >>> with open_store("explgraph-store", read_only=True) as store:  # doctest: +SKIP
    ...     check_names(store, {"model": "toy_vgg-bird", "image": "nope.png"})
    Traceback (most recent call last):
    InputError: no image 'nope.png' in this store (by image id or stored path); ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explgraph.core.errors import InputError, UnknownModel
from graphstore import GraphStore

EXAMPLES = 3  # names shown when one is unknown


@dataclass(frozen=True)
class _Name:
    """How to check one kind of name and how to tell the user what exists instead."""

    param: str
    what: str
    exists: str  # Cypher: a row when the name exists
    examples: str  # Cypher: column ``name``, a few that exist (at most $n)
    listing: str  # the command that lists them all ({model} filled in)
    error: type[InputError] | type[UnknownModel] = InputError


# checked in this order: a layer is looked up in its model, so the model comes first
_NAMES = (
    _Name(
        "model",
        "model",
        "MATCH (m:Model {model_id: $model}) RETURN m.model_id AS name",
        "MATCH (m:Model) WHERE NOT m.model_id ENDS WITH '~staging' "
        "RETURN m.model_id AS name ORDER BY name LIMIT $n",
        "explgraph models",
        UnknownModel,
    ),
    _Name(
        "layer",
        "layer",
        "MATCH (l:Layer) WHERE l.model_id = $model AND l.name = $layer RETURN l.name AS name",
        "MATCH (l:Layer) WHERE l.model_id = $model RETURN l.name AS name ORDER BY l.depth LIMIT $n",
        "explgraph show {model}",
    ),
    _Name(
        "image",
        "image",
        "MATCH (i:Image) WHERE i.image_id = $image OR i.path = $image RETURN i.image_id AS name",
        "MATCH (i:Image) RETURN i.path AS name ORDER BY name LIMIT $n",
        'explgraph query "MATCH (i:Image) RETURN i.image_id, i.path"',
    ),
    _Name(
        "pattern",
        "pattern",
        "MATCH (p:Pattern {pattern_id: $pattern}) RETURN p.pattern_id AS name",
        "MATCH (p:Pattern) WHERE p.model_id = $model AND p.layer = $layer "
        "RETURN p.pattern_id AS name ORDER BY p.filter, p.idx LIMIT $n",
        "explgraph query filter-patterns -p model={model} -p layer={layer} -p filter=F",
    ),
)


_ANY_PATTERNS = "MATCH (p:Pattern) RETURN p.pattern_id AS name ORDER BY name LIMIT $n"


def _looked_up(name: _Name, bound: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``name``'s queries; a pattern id lends its model and layer."""
    params = {key: bound[key] for key in ("model", "layer", name.param) if key in bound}
    if name.param == "pattern":
        model, _, rest = str(bound["pattern"]).partition("/")
        params.update(model=model, layer=rest.partition("/")[0])
    return params


def _unknown(store: GraphStore, name: _Name, params: dict[str, Any]) -> Exception:
    """The one-line error for the unknown ``params[name.param]``."""
    where = {
        "model": "in this store",
        "layer": f"in model {params.get('model')!r}",
        "image": "in this store (by image id or stored path)",
        "pattern": "in this store",
    }[name.param]
    listing = name.listing.format(model=params.get("model"), layer=params.get("layer"))
    found = [row["name"] for row in store.query(name.examples, {**params, "n": EXAMPLES})]
    if not found and name.param == "pattern":  # the id's model or layer is unknown too
        found = [row["name"] for row in store.query(_ANY_PATTERNS, {"n": EXAMPLES})]
        listing = name.listing.format(model="MODEL", layer="LAYER")
    shown = f"e.g. {', '.join(map(str, found))}" if found else f"there are no {name.what}s yet"
    return name.error(
        f"no {name.what} {params[name.param]!r} {where}; {shown}; list them with: {listing}"
    )


def check_names(store: GraphStore, bound: Mapping[str, Any]) -> None:
    """Raise when a model, layer, image or pattern named in ``bound`` is not in ``store``.

    An empty layer means every layer and is not checked.

    Raises:
        UnknownModel: no such model (the message names a few that exist).
        InputError: no such layer in that model, image or pattern.
    """
    for name in _NAMES:
        value = bound.get(name.param)
        if value is None or value == "":
            continue
        params = _looked_up(name, bound)
        if not store.query(name.exists, params):
            raise _unknown(store, name, params)


__all__ = ["EXAMPLES", "check_names"]
