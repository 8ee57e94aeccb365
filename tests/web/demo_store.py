"""The store the web explorer is tested on: the mined toy graph plus what the other pages show.

On top of :func:`tests.helpers.mined.mine_toy`'s store (copied, never changed) it adds a second
toy CNN (``tests/assets/toy_vgg_seed1.pt``) mined on the same images, a comparison of the two on
their top stage written as ``MATCHES`` edges, the first model's diagnosis
(``Pattern.diagnosis``), and two And-Or graphs built from three training shots: ``head``, and
the same shots under the legal but hostile part name :data:`HOSTILE_PART`, so every page that
prints a part name is tested for escaping, and an explainer network of :data:`EXPLAINED_LAYER`
with its control, written by :func:`graphstore.explainers.write_explainer` (its filters' best
parts :data:`EXPLAINER_PARTS`, the hostile name among them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from miner.data.folder import load_dataset
from queries.aog import build_aog, pick_shots
from queries.aog.shots import ShotSet
from queries.compare import CompareSettings, compare_models, write_matches
from queries.diagnose import diagnose, store_diagnosis
from queries.loaded import LoadedGraph
from tests.helpers.explainers import write_sample_explainers
from tests.helpers.mined import SEED1_CHECKPOINT, SEED1_ID, TOY_LABEL, MinedToy
from tests.helpers.stores import open_store

COMPARED_LAYERS = ("block4_conv1", "block4_conv2")
PART = "head"
HOSTILE_PART = '<script>alert("part")</script>'
EXPLAINED_LAYER = "block4_conv2"
#: the best part and purity of each interpretable filter of the explainer of EXPLAINED_LAYER
EXPLAINER_PARTS = ((PART, 0.9), (HOSTILE_PART, 0.6), (PART, 0.5), ("none", 0.1))


@dataclass(frozen=True)
class WebStore:
    """The explorer's test store and what is in it."""

    store_spec: str
    cache_dir: Path
    data_dir: Path
    model_a: str
    model_b: str
    parts: tuple[str, ...]


def build_web_store(mined: MinedToy, root: Path) -> WebStore:
    """Copy the mined toy's store below ``root`` and add the second model, matches and AOGs."""
    spec = mined.copy_store(root / "store")
    mined.mine_into(spec, checkpoint=SEED1_CHECKPOINT, model_id=SEED1_ID)
    dataset = load_dataset(mined.data_dir)
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    with open_store(spec) as store:
        toy = LoadedGraph.open(store, mined.model_id, cache_dir=mined.cache_dir, device="cpu")
        seed1 = LoadedGraph.open(store, SEED1_ID, cache_dir=mined.cache_dir, device="cpu")
        report = compare_models(
            store,
            toy,
            seed1,
            train,
            settings=CompareSettings(layers_a=COMPARED_LAYERS, layers_b=COMPARED_LAYERS),
        )
        write_matches(store, mined.model_id, SEED1_ID, report.matches)
        shots = pick_shots(train, PART, 3, size=96)
        for name in (PART, HOSTILE_PART):
            named = ShotSet(part=name, shots=shots.shots, source=shots.source)
            build_aog(store, toy, named)
        birds = dataset.select(label=TOY_LABEL).records
        diagnosis = diagnose(toy, birds)
        store_diagnosis(store, diagnosis)
        parts, purity = zip(*EXPLAINER_PARTS, strict=True)
        write_sample_explainers(store, mined.model_id, EXPLAINED_LAYER, parts, purity)
    return WebStore(
        store_spec=spec,
        cache_dir=mined.cache_dir,
        data_dir=mined.data_dir,
        model_a=mined.model_id,
        model_b=SEED1_ID,
        parts=(PART, HOSTILE_PART),
    )


__all__ = [
    "COMPARED_LAYERS",
    "EXPLAINED_LAYER",
    "EXPLAINER_PARTS",
    "HOSTILE_PART",
    "PART",
    "SEED1_ID",
    "WebStore",
    "build_web_store",
]
