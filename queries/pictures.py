"""PNG pictures with matplotlib's object API (no pyplot, no global state): one way to make a
figure and one way to save it, shared by ``explain``'s heat map, ``locate --vote-maps`` and the
``compare`` match matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from explgraph.core.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100  # figure inches x DPI = PNG pixels


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def pixel_canvas(width: int, height: int) -> tuple[Figure, Axes]:
    """A figure of exactly ``width`` x ``height`` pixels with one frameless axes over all of it,
    in pixel coordinates: ``(0, 0)`` is the top-left corner, y grows downwards."""
    figure = new_figure(width / DPI, height / DPI)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    return figure, axes


def save_png(figure: Figure, path: Path, *, what: str, tight: bool = False) -> Path:
    """Write ``figure`` to ``path`` as a PNG (``tight``: cropped to what is drawn).

    Raises:
        InputError: ``path`` cannot be written (``what`` names the picture in the message).
    """
    try:
        figure.savefig(path, format="png", bbox_inches="tight" if tight else None)
    except OSError as error:
        raise InputError(f"cannot write {what} to {path}: {error}; pick another path") from error
    return path


__all__ = ["DPI", "new_figure", "pixel_canvas", "save_png"]
