"""Rich consoles for command output that read well on a terminal and in a pipe or log.

Rich wraps at 80 columns when the stream is not a terminal, which splits paths and cuts table
headers and layer names ("block3_c…"). On a terminal the console takes the terminal's width; in
a pipe or log it gets :data:`PIPE_WIDTH` columns, wide enough that nothing wraps or truncates.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: columns of a console writing to a pipe or file: no line of ours is that long
PIPE_WIDTH = 10_000


def output_console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr): terminal width on a TTY, unlimited otherwise."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if is_tty:
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=False)


__all__ = ["PIPE_WIDTH", "output_console"]
