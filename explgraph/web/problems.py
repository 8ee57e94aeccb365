"""A page that meets a stored value it does not expect renders what it can and says what is
wrong, never a 500.

A store can hold what no page expects: a Pattern whose ``layer`` was changed with ``--write``
to a layer that does not exist, a property removed, or (on Bolt, which has no schema) a string
where a number belongs. Three nets catch it, finest first:

- the data functions note what they find missing in the page's ``problems``;
- in templates a missing attribute renders as "–" and is noted (:class:`NotedUndefined`)
  instead of failing the page;
- a template that still fails on a value is replaced by a plain listing of everything the
  page read (``raw.html``), and a page whose data functions fail (:data:`DATA_ERRORS`) by a
  page that says so (:func:`tolerant`).

Every notice names the value in one line; the traceback goes to the server log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, is_dataclass
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

#: what a bad stored value raises while a page is read or drawn
DATA_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,
    jinja2.TemplateError,
)
_NOTED: ContextVar[list[str] | None] = ContextVar("explorer_noted", default=None)
log = logging.getLogger(__name__)


def note(problem: str) -> None:
    """Add one line to the notice of the page being rendered."""
    noted = _NOTED.get()
    if noted is not None and problem not in noted:
        noted.append(problem)


class NotedUndefined(jinja2.ChainableUndefined):
    """A missing value: drawn as "–" and noted on the page (arithmetic on it still fails)."""

    __slots__ = ()

    def __str__(self) -> str:
        note(f"a stored value is missing ({self._undefined_message})")
        return "–"


def render(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """Render ``name`` with a notice of every problem met; the raw listing if it fails."""
    given = list(context.pop("problems", None) or [])
    token = _NOTED.set([])
    try:
        response = templates.TemplateResponse(
            request, name, {**context, "problems": given}, status_code=status_code
        )
        noted = _NOTED.get() or []
        if noted:  # drawn again with the notice on top
            response = templates.TemplateResponse(
                request, name, {**context, "problems": given + noted}, status_code=status_code
            )
        return response
    except DATA_ERRORS as error:
        log.warning("%s: %s cannot draw a stored value", request.url.path, name, exc_info=True)
        return templates.TemplateResponse(
            request,
            "raw.html",
            {"problems": [*given, _describe(error)], "data": _listing(context)},
            status_code=status_code,
        )
    finally:
        _NOTED.reset(token)


def tolerant(
    handler: Callable[[Request], Response], templates: Callable[[Request], Jinja2Templates]
) -> Callable[[Request], Response]:
    """``handler``, answering a page whose stored values it cannot read with a notice."""

    def page(request: Request) -> Response:
        try:
            return handler(request)
        except DATA_ERRORS as error:
            log.warning("%s met a stored value it cannot read", request.url.path, exc_info=True)
            if request.url.path.endswith(".png"):
                return Response(f"no picture: {_describe(error)}", 404, media_type="text/plain")
            return templates(request).TemplateResponse(
                request, "raw.html", {"problems": [_describe(error)], "data": {}}
            )

    page.__name__ = handler.__name__
    page.__doc__ = handler.__doc__
    return page


def _describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return (
        f"a stored value is not what this page expects ({type(error).__name__}: {text[:200]}); "
        "fix it with `explgraph query --write` or mine the model again"
    )


def _listing(context: dict[str, Any]) -> dict[str, str]:
    """What the page read, as indented JSON text per name (escaped by the template)."""
    out = {}
    for key, value in context.items():
        if key == "request":
            continue
        plain = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        try:
            out[key] = json.dumps(plain, indent=1, default=str)
        except (TypeError, ValueError):  # keys JSON cannot hold, a circular value
            out[key] = repr(plain)
    return out


__all__ = ["DATA_ERRORS", "NotedUndefined", "note", "render", "tolerant"]
