"""A mine run's identity: same inputs and parameters, same digest, same stored result.

A re-run whose digest matches a completely written model in the store has nothing to do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from explgraph.core.errors import UnknownModel
from explgraph.workflows.mine.request import MineRequest
from graphstore import open_store
from graphstore.settings import StoreSettings
from miner.data.records import ImageRecord


def image_key(records: Sequence[ImageRecord]) -> str:
    """A hash of the images' paths and (fitted) boxes, in order."""
    return hashlib.sha1("\n".join(f"{r.path}|{r.box}" for r in records).encode()).hexdigest()


def run_digest(request: MineRequest, fingerprint: str, layers: list[str], image_key: str) -> str:
    """Identity of a mining run: same digest, same stored result."""
    payload = {
        "fingerprint": fingerprint,
        "layers": layers,
        "images": image_key,
        "settings": request.settings_overrides,
        "fires": [request.fires_per_image, request.fires_per_pattern],
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def already_stored(
    store_spec: str, store_settings: StoreSettings | None, model_id: str, digest: str
) -> bool:
    """Whether the store holds ``model_id`` completely written by a run with this digest."""
    with open_store(store_spec, read_only=True, settings=store_settings) as store:
        try:
            described = store.describe_model(model_id)
        except UnknownModel:
            return False
    if described.get("status") != "complete":
        return False
    return bool(described["params"].get("run_digest") == digest)


__all__ = ["already_stored", "image_key", "run_digest"]
