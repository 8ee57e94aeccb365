"""The layer-by-layer match matrix as a PNG, drawn with matplotlib (:mod:`queries.pictures`).

Rows are model A's layers (bottom first), columns model B's. A cell's shade is the share of the
smaller of the two layers that found a match, ``matched / min(P_A, P_B)``; its text gives the
matched count and that share. The layout is fixed in pixels (cells of ``_CELL`` pixels, or as
wide as the longest column label), so the picture reads the same whatever the number of layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explgraph.core.errors import InputError
from queries.pictures import DPI, pixel_canvas, save_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_CELL = 96
_MARGIN_LEFT = 150
_MARGIN_TOP = 90
_PAD = 16
_FONT_PX = 13  # title and counts
_SMALL_PX = 11  # labels and shares
_LOW, _HIGH = (255, 255, 255), (8, 48, 107)  # no match: white; every pattern: deep blue


def _shade(share: float) -> tuple[float, float, float]:
    """White (no match) to deep blue (every pattern of the smaller layer matched), as RGB in
    ``[0, 1]`` (each channel rounded to a whole 8-bit level)."""
    s = min(max(share, 0.0), 1.0)
    red, green, blue = (
        round(low + (high - low) * s) for low, high in zip(_LOW, _HIGH, strict=True)
    )
    return red / 255.0, green / 255.0, blue / 255.0


def _points(pixels: int) -> float:
    """A font size given in pixels, in points."""
    return pixels * 72.0 / DPI


def _text_width(text: str, pixels: int) -> int:
    """Width in pixels of ``text`` set at ``pixels`` pixels."""
    from matplotlib.textpath import TextPath

    extent = TextPath((0, 0), text, size=_points(pixels)).get_extents()
    return int(extent.width * DPI / 72.0)


def match_share(row: dict[str, Any]) -> float:
    """``matched / min(patterns_a, patterns_b)`` of one layer-pair row (0 for an empty layer)."""
    smaller = min(int(row["patterns_a"]), int(row["patterns_b"]))
    return float(row["matched"]) / smaller if smaller else 0.0


def _text(axes: Axes, x: float, y: float, text: str, pixels: int, colour: str) -> None:
    axes.text(x, y, text, fontsize=_points(pixels), color=colour, ha="left", va="top")


def _cell(axes: Axes, left: float, top: float, width: float, row: dict[str, Any] | None) -> None:
    """One layer pair: its shade, and the matched count and share where the pair was compared."""
    from matplotlib.patches import Rectangle

    share = match_share(row) if row else 0.0
    axes.add_patch(
        Rectangle(
            (left, top),
            width - 2,
            _CELL - 2,
            facecolor=_shade(share),
            edgecolor="lightgray",
            linewidth=1.0,
        )
    )
    if row:
        ink = "white" if share > 0.5 else "black"
        _text(axes, left + 8, top + 30, f"{row['matched']}", _FONT_PX, ink)
        _text(axes, left + 8, top + 50, f"{share:.0%}", _SMALL_PX, ink)


def draw_match_matrix(
    rows: Sequence[dict[str, Any]],
    layers_a: Sequence[str],
    layers_b: Sequence[str],
    path: Path,
    *,
    title: str,
) -> Path:
    """Write the match matrix of the layer-pair ``rows`` (``layer_a``, ``layer_b``,
    ``patterns_a``, ``patterns_b``, ``matched``) to ``path`` as a PNG and return the path.

    Raises:
        InputError: the folder of ``path`` cannot be written.
    """
    by_pair = {(row["layer_a"], row["layer_b"]): row for row in rows}
    # cells as wide as the longest column label, so names like features.12.conv.1 stay apart
    cell_w = max([_CELL] + [_text_width(n, _SMALL_PX) + 10 for n in layers_b])
    left_w = max([_MARGIN_LEFT] + [_text_width(n, _SMALL_PX) + 2 * _PAD for n in layers_a])
    width = max(left_w + cell_w * len(layers_b) + _PAD, _text_width(title, _FONT_PX) + 2 * _PAD)
    height = _MARGIN_TOP + _CELL * len(layers_a) + _PAD
    figure, axes = pixel_canvas(width, height)
    _text(axes, _PAD, _PAD // 2, title, _FONT_PX, "black")
    _text(axes, left_w, _MARGIN_TOP - 40, "model B layers (columns)", _SMALL_PX, "gray")
    _text(axes, _PAD, _MARGIN_TOP - 20, "model A layers (rows)", _SMALL_PX, "gray")
    for col, name in enumerate(layers_b):
        _text(axes, left_w + col * cell_w + 4, _MARGIN_TOP - 20, name, _SMALL_PX, "black")
    for r, name_a in enumerate(layers_a):
        top = _MARGIN_TOP + r * _CELL
        _text(axes, _PAD, top + _CELL // 2 - 6, name_a, _SMALL_PX, "black")
        for col, name_b in enumerate(layers_b):
            _cell(axes, left_w + col * cell_w, top, cell_w, by_pair.get((name_a, name_b)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot write the match matrix to {path}: {error}; pick another path"
        ) from error
    return save_png(figure, path, what="the match matrix")


__all__ = ["draw_match_matrix", "match_share"]
