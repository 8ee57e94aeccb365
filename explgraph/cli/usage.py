"""Usage mistakes found by a command itself (a missing argument, options that exclude each other).

Click finds most usage mistakes while it parses the command line; the rest are found in the
command's body. Both end the same way, as the README promises: one line saying what is wrong
(after click's usage line when the command's context is given) and exit code 2
(:func:`explgraph.cli.app.main`). An :class:`InputError` exits 1: the code for what explgraph
refuses.
"""

from __future__ import annotations

import typer


def usage_error(
    message: str, ctx: typer.Context | None = None, *, hint: str | None = None
) -> typer.BadParameter:
    """The usage mistake ``message`` about parameter ``hint`` (e.g. ``'CYPHER'``), to raise.

    Example:
        >>> str(usage_error("give either --a or --b, not both").format_message())
        'Invalid value: give either --a or --b, not both'
    """
    return typer.BadParameter(message, ctx=ctx, param_hint=hint)


__all__ = ["usage_error"]
