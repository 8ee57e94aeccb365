"""The layer-by-layer match matrix as a PNG, drawn with PIL (no plotting library needed).

Rows are model A's layers (bottom first), columns model B's. A cell's shade is the share of the
smaller of the two layers that found a match, ``matched / min(P_A, P_B)``; its text gives the
matched count and that share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explgraph.core.errors import InputError

_CELL = 96
_MARGIN_LEFT = 150
_MARGIN_TOP = 90
_PAD = 16


def _shade(share: float) -> tuple[int, int, int]:
    """White (no match) to deep blue (every pattern of the smaller layer matched)."""
    s = min(max(share, 0.0), 1.0)
    low, high = (255, 255, 255), (8, 48, 107)
    return (
        round(low[0] + (high[0] - low[0]) * s),
        round(low[1] + (high[1] - low[1]) * s),
        round(low[2] + (high[2] - low[2]) * s),
    )


def match_share(row: dict[str, Any]) -> float:
    """``matched / min(patterns_a, patterns_b)`` of one layer-pair row (0 for an empty layer)."""
    smaller = min(int(row["patterns_a"]), int(row["patterns_b"]))
    return float(row["matched"]) / smaller if smaller else 0.0


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
    from PIL import Image, ImageDraw, ImageFont

    by_pair = {(row["layer_a"], row["layer_b"]): row for row in rows}
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=11)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # Cells as wide as the longest column label, so names like features.12.conv.1 stay apart.
    cell_w = max([_CELL] + [int(measure.textlength(n, font=small)) + 10 for n in layers_b])
    left_w = max(
        [_MARGIN_LEFT] + [int(measure.textlength(n, font=small)) + 2 * _PAD for n in layers_a]
    )
    width = max(
        left_w + cell_w * len(layers_b) + _PAD, int(measure.textlength(title, font=font)) + 2 * _PAD
    )
    height = _MARGIN_TOP + _CELL * len(layers_a) + _PAD
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((_PAD, _PAD // 2), title, fill="black", font=font)
    draw.text((left_w, _MARGIN_TOP - 40), "model B layers (columns)", fill="gray", font=small)
    draw.text((_PAD, _MARGIN_TOP - 20), "model A layers (rows)", fill="gray", font=small)
    for col, name in enumerate(layers_b):
        draw.text((left_w + col * cell_w + 4, _MARGIN_TOP - 20), name, fill="black", font=small)
    for r, name_a in enumerate(layers_a):
        top = _MARGIN_TOP + r * _CELL
        draw.text((_PAD, top + _CELL // 2 - 6), name_a, fill="black", font=small)
        for col, name_b in enumerate(layers_b):
            left = left_w + col * cell_w
            row = by_pair.get((name_a, name_b))
            share = match_share(row) if row else 0.0
            draw.rectangle(
                (left, top, left + cell_w - 2, top + _CELL - 2),
                fill=_shade(share),
                outline="lightgray",
            )
            ink = "white" if share > 0.5 else "black"
            if row:
                draw.text((left + 8, top + 30), f"{row['matched']}", fill=ink, font=font)
                draw.text((left + 8, top + 50), f"{share:.0%}", fill=ink, font=small)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
    except OSError as error:
        raise InputError(
            f"cannot write the match matrix to {path}: {error}; pick another path"
        ) from error
    return path


__all__ = ["draw_match_matrix", "match_share"]
