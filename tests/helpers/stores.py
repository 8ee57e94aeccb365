"""Open stores in tests as the CLI does: credentials from the ``NEO4J_*`` variables.

The libraries take their settings as arguments (docs/architecture.md); the Bolt fixtures point
the ``NEO4J_*`` variables at the server under test, and these helpers read them like the CLI.
"""

from __future__ import annotations

from typing import Any

from explgraph.cli.environment import store_settings
from graphstore import GraphRecords, GraphStore
from graphstore import open_store as _open_store
from graphstore.settings import StoreSettings
from graphstore.testing.synthetic import LayerShape, synthetic_records

#: the small model of the CLI tests: 8 patterns ``m1/low/f0/p0`` ... ``m1/high/f1/p1``
SMALL_LAYERS = (LayerShape("low", 4, 8.0, 2), LayerShape("high", 2, 16.0, 2))
#: the tiny model of the store tests (the ``tiny_records`` fixture)
TINY_LAYERS = (LayerShape("low", 6, 8.0, 3), LayerShape("high", 3, 16.0, 2))


def env_settings() -> StoreSettings:
    """The Bolt credentials the CLI would use now."""
    return store_settings()


def open_store(spec: str, **options: Any) -> GraphStore:
    """:func:`graphstore.open_store` with the environment's credentials."""
    options.setdefault("settings", env_settings())
    return _open_store(spec, **options)


def tiny_records(
    model_id: str, *, seed: int = 0, channels: int = 2, n_images: int = 4
) -> GraphRecords:
    """A small synthetic model: 2 layers x ``channels`` filters, 10 patterns a filter pair,
    ``n_images`` images. Models built with the same ``seed`` share their images."""
    return synthetic_records(
        model_id,
        channels=channels,
        layers=TINY_LAYERS,
        parents_per_pattern=2,
        n_images=n_images,
        fires_per_image=3,
        seed=seed,
    )


def write_small_model(spec: str, model_id: str = "m1") -> GraphRecords:
    """Write a small synthetic model (2 channels, :data:`SMALL_LAYERS`, 2 images) into ``spec``."""
    records = synthetic_records(
        model_id,
        channels=2,
        layers=SMALL_LAYERS,
        parents_per_pattern=2,
        n_images=2,
        fires_per_image=2,
    )
    with open_store(spec) as store:
        store.write_model(records)
    return records


__all__ = [
    "SMALL_LAYERS",
    "TINY_LAYERS",
    "env_settings",
    "open_store",
    "tiny_records",
    "write_small_model",
]
