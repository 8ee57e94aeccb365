"""And-Or graphs of semantic parts and few-shot part localisation (docs/method.md §7.2, §8).

Data flow: shots (:mod:`~queries.aog.shots`) → :func:`build_aog` (graph inference on the
shots, candidates and their firings from the store by Cypher, selection in
:mod:`~queries.aog.select`) → Part / Template / USES in the store (:mod:`~queries.aog.model`)
→ :func:`locate_part` (inference on new images, Gaussian voting in :mod:`~queries.aog.vote`)
→ :func:`evaluate_parts` against the baselines of :mod:`~queries.aog.baselines`.
"""

from queries.aog.build import BuildReport, build_aog
from queries.aog.evaluate import PartsReport, evaluate_parts
from queries.aog.locate import LocateResult, PartPrediction, locate_part
from queries.aog.model import AndOrGraph, TemplateInfo, list_parts, load_aog, write_aog
from queries.aog.select import SelectionSettings
from queries.aog.shots import Shot, ShotSet, pick_shots, read_shots, write_shots

__all__ = [
    "AndOrGraph",
    "BuildReport",
    "LocateResult",
    "PartPrediction",
    "PartsReport",
    "SelectionSettings",
    "Shot",
    "ShotSet",
    "TemplateInfo",
    "build_aog",
    "evaluate_parts",
    "list_parts",
    "load_aog",
    "locate_part",
    "pick_shots",
    "read_shots",
    "write_aog",
    "write_shots",
]
