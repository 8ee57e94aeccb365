"""The frame an image is read in: its object box, or the whole image when none is given.

``explain`` and ``locate`` both crop the frame to the CNN's input, and both say which frame they
used, in the same words, so that an answer read without a box is never mistaken for one read
inside the object.
"""

from __future__ import annotations

from miner.data.records import Box


def frame_line(box: Box | None, size: tuple[int, int] | None = None) -> str:
    """One line naming the frame: ``box`` (image pixels), or the whole image (``size`` is its
    ``(width, height)`` when known) when ``box`` is ``None``."""
    if box is None:
        whole = f" ({size[0]} x {size[1]} px)" if size else ""
        return f"no box: the whole image{whole} was used as the frame"
    x0, y0, x1, y1 = box
    return f"frame: the object box ({x0:g}, {y0:g}, {x1:g}, {y1:g})"


__all__ = ["frame_line"]
