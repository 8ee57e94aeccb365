"""The looks the synthetic parts dataset can be drawn in.

``cartoon`` (:mod:`render`) is the look everything was developed on; ``lowpoly``
(:mod:`lowpoly`) is a second look with other shapes, proportions, textures, backgrounds,
clutter and poses but the same categories, parts and annotation format, kept for evaluation:
nothing is tuned on it (docs/faithfulness.md).
"""

from __future__ import annotations

from collections.abc import Callable

from explgraph.core.errors import InputError
from miner.data.synthetic.lowpoly import render_sample as render_lowpoly
from miner.data.synthetic.render import SyntheticSample, render_sample

Renderer = Callable[..., SyntheticSample]

DEFAULT_STYLE = "cartoon"
STYLES: dict[str, Renderer] = {
    "cartoon": render_sample,
    "lowpoly": render_lowpoly,
}


def renderer(style: str) -> Renderer:
    """The ``render_sample`` of a look.

    Raises:
        InputError: no such look.
    """
    if style not in STYLES:
        raise InputError(f"synthetic style {style!r}: use one of {', '.join(STYLES)}")
    return STYLES[style]


__all__ = ["DEFAULT_STYLE", "STYLES", "Renderer", "renderer"]
