"""The synthetic parts dataset: articulated animals drawn from a seed, with exact part keypoints.

Four categories with distinct part layouts (``quadruped``, ``bird``, ``fish``, ``giraffe``),
random rotation (±35°), mirroring, articulation, scale, colour, skin texture, background clutter
and noise, in one of two looks (:data:`STYLES`: ``cartoon``, the default, and ``lowpoly``, a
second look kept for evaluation). Every sample carries its object box and the keypoints of its
category's parts
(:data:`CATEGORY_PARTS`; ``head``, ``body`` and ``tail`` are shared by all categories). Sample
``i`` depends only on ``(seed, i)``.

Example:
    >>> from miner.data.synthetic import render_sample
    >>> sample = render_sample(2, size=96, seed=0)
    >>> sample.label, sorted(sample.parts)[:2]
    ('fish', ['body', 'dorsal_fin'])
"""

from miner.data.synthetic.categories import CATEGORIES, CATEGORY_PARTS, ROLES
from miner.data.synthetic.render import SyntheticSample, iter_samples, render_sample, split_of
from miner.data.synthetic.styles import DEFAULT_STYLE, STYLES
from miner.data.synthetic.writer import write_synthetic

__all__ = [
    "CATEGORIES",
    "CATEGORY_PARTS",
    "DEFAULT_STYLE",
    "ROLES",
    "STYLES",
    "SyntheticSample",
    "iter_samples",
    "render_sample",
    "split_of",
    "write_synthetic",
]
