"""Ids with ``/`` in the address: ``/model/a%2Fb`` reaches model ``a/b``.

ASGI servers decode the path before routing, so ``/model/a%2Fb`` arrives as ``/model/a/b`` and
no route matches: a model id with ``/`` (``mine --model-id`` accepts one) was listed but its
pages were unreachable. :class:`SlashSafePaths` rebuilds the path from the raw one, decoding
every segment but keeping a ``/`` (and ``%``) inside a segment encoded, so the router splits at
the address's own slashes only; :func:`path_value` decodes a path parameter to the id.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send


def routed_path(raw_path: bytes) -> str:
    """The path the router sees: each segment decoded, a ``/`` or ``%`` inside one kept
    encoded (``/model/a%2Fb/parts`` -> ``/model/a%2Fb/parts``, ``/x%41`` -> ``/xA``)."""
    segments = raw_path.decode("latin-1").split("/")
    decoded = (unquote(segment, errors="replace") for segment in segments)
    return "/".join(text.replace("%", "%25").replace("/", "%2F") for text in decoded)


def path_value(value: str) -> str:
    """A path parameter as the id it names (undoes :func:`routed_path`'s encoding)."""
    return unquote(value)


class SlashSafePaths:
    """ASGI middleware: route on :func:`routed_path` of the raw path (when the server gives
    one), so an encoded ``/`` stays inside its id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            raw = raw.split(b"?", 1)[0]  # some clients leave the query in it
            scope = {**scope, "path": routed_path(raw)}
        await self.app(scope, receive, send)


__all__ = ["SlashSafePaths", "path_value", "routed_path"]
