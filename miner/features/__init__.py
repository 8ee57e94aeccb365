"""Feature maps of object crops, normalised as docs/method.md §2 and cached on disk.

``extract_features`` runs the model once per image set and key; the :class:`FeatureSet` it
returns reads normalised chunks of images from the cache, so memory stays bounded.
"""

from miner.features.extract import extract_features
from miner.features.featureset import FeatureSet, SkippedImage

__all__ = ["FeatureSet", "SkippedImage", "extract_features"]
