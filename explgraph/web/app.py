"""The explorer's ASGI application: :func:`create_app` over one read-only store.

Pages are rendered on the server from Jinja2 templates with autoescaping on, so every string
from the store (part names, ids, paths) or the request is escaped. A Content-Security-Policy
allows scripts, styles and images only from this server, so nothing runs that the package did
not ship. Errors: an id that names nothing is a 404, a malformed request a 400 (413 for an
upload over the limit), a refused query a 400/403, a full explanation queue a 429 with
``Retry-After``; a stored value a page does not expect gives the page with a notice
(:mod:`explgraph.web.problems`); any other failure is a plain 500 page, its traceback only in
the server log. Reads borrow one of a few store handles (:mod:`explgraph.web.store`), console
and canned queries under a time limit; ids with ``/`` are reachable
(:mod:`explgraph.web.paths`). Every request first checks whether another process wrote the store
(:class:`_Fresh`), so models, And-Or graphs and comparisons written while the server runs show
up on the next page without a restart.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from explgraph.core.errors import (
    ExplGraphError,
    InputError,
    ReadOnlyViolation,
    StoreUnavailable,
    UnknownModel,
)
from explgraph.web import data
from explgraph.web.console import check_console_statement, same_origin
from explgraph.web.explain_worker import Checkpoints
from explgraph.web.jobs import MAX_WAITING, Explainer, Job, QueueFull, new_job_folder
from explgraph.web.neighbourhood import layout, pattern_href
from explgraph.web.paths import SlashSafePaths, path_value
from explgraph.web.pictures import Pictures, decode_upload, patch, png_bytes
from explgraph.web.problems import NotedUndefined, render, tolerant
from explgraph.web.store import ReaderPool
from graphstore.settings import StoreSettings
from miner.data.records import Box

HERE = Path(__file__).resolve().parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver")
#: default upload limits: bytes of the file, pixels of the decoded image
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_PIXELS = 24_000_000
#: default time limit of a console or canned query, seconds
QUERY_TIMEOUT_S = 10.0
#: uploads decoded at once (a 24-megapixel image takes about 100 MB while it is decoded)
_DECODES = threading.BoundedSemaphore(2)
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_ID = 300  # longest id accepted in a URL
CSP = (
    "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class _Explorer:
    """What the routes share: the store, the pictures, the explanation jobs, the limits."""

    def __init__(
        self,
        store: ReaderPool,
        explainer: Explainer,
        max_upload_bytes: int,
        max_upload_pixels: int,
        query_timeout_s: float,
    ) -> None:
        self.store = store
        self.pictures = Pictures(store)
        self.counts = data.ModelCounts()
        self.explainer = explainer
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_pixels = max_upload_pixels
        self.query_timeout_s = query_timeout_s
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,  # every page, every string: store strings may hold markup
            undefined=NotedUndefined,  # a missing stored value: "–" and a notice, not a 500
        )
        self.templates = Jinja2Templates(env=env)
        env.filters["num"] = _num
        env.filters["pct"] = _pct
        env.globals["pattern_href"] = pattern_href
        env.globals["q"] = lambda text: quote(str(text), safe="")
        env.globals["short"] = lambda pid: "/".join(str(pid).rsplit("/", 3)[1:])
        env.globals["store_spec"] = store.spec
        env.globals["engine"] = store.engine


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "–"
    try:
        return f"{100.0 * float(value):.1f}%"
    except (TypeError, ValueError):  # a share stored as something else: shown as stored
        return str(value)


def _explorer(request: Request) -> _Explorer:
    explorer: _Explorer = request.app.state.explorer
    return explorer


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return render(_explorer(request).templates, request, template, context, status_code)


def _id(request: Request, name: str) -> str:
    value = path_value(str(request.path_params[name]))
    if not value or len(value) > _MAX_ID:
        raise InputError(f"the {name} in the address is empty or too long")
    return value


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise InputError(f"{name} must lie between {low} and {high}, not {value}")
    return value


# pages ---------------------------------------------------------------------------------------


def models_page(request: Request) -> Response:
    """Every mined model: status, counts, layers with explained share."""
    explorer = _explorer(request)
    models = data.models_overview(explorer.store, explorer.counts)
    return _page(
        request, "models.html", models=models, pairs=data.compared_pairs(_explorer(request).store)
    )


def model_page(request: Request) -> Response:
    """One model: properties and layers."""
    explorer = _explorer(request)
    model = data.model_detail(explorer.store, _id(request, "model_id"), explorer.counts)
    return _page(request, "model.html", model=model)


def layer_page(request: Request) -> Response:
    """A layer's filters and their patterns, sortable."""
    model_id, layer = _id(request, "model_id"), _id(request, "layer")
    sort = request.query_params.get("sort", "score")
    detail = data.layer_detail(_explorer(request).store, model_id, layer)
    filters = data.sort_filters(detail["filters"], sort)
    return _page(
        request,
        "layer.html",
        model_id=model_id,
        layer=detail,
        filters=filters,
        sort=sort,
        sorts=list(data.LAYER_SORTS),
    )


def filter_page(request: Request) -> Response:
    """The patterns of one filter."""
    model_id, layer = _id(request, "model_id"), _id(request, "layer")
    index = int(request.path_params["index"])
    rows = data.filter_patterns(_explorer(request).store, model_id, layer, index)
    return _page(request, "filter.html", model_id=model_id, layer=layer, index=index, rows=rows)


def pattern_page(request: Request) -> Response:
    """A pattern: patches, prior, relations, neighbourhood, parts, matches."""
    pattern = data.pattern_detail(_explorer(request).store, _id(request, "pattern_id"))
    view = layout(pattern, data.NEIGHBOURS_DRAWN)
    return _page(request, "pattern.html", p=pattern, view=view, problems=pattern["problems"])


def patch_png(request: Request) -> Response:
    """The receptive-field patch of one pattern's firing on one stored image."""
    explorer = _explorer(request)
    pattern_id = request.query_params.get("pattern", "")
    image_id = request.query_params.get("image", "")
    if not pattern_id or not image_id or max(len(pattern_id), len(image_id)) > _MAX_ID:
        raise InputError("give ?pattern=<pattern id>&image=<image id>")
    rows = explorer.store.query(
        "MATCH (i:Image {image_id: $i})-[f:FIRES]->(p:Pattern {pattern_id: $p}) "
        "MATCH (l:Layer) WHERE l.model_id = p.model_id AND l.name = p.layer "
        "MATCH (m:Model {model_id: p.model_id}) "
        "RETURN i.path AS path, f.x AS x, f.y AS y, l.rf_size AS rf_size, "
        "m.input_size AS input_size, p.model_id AS model_id LIMIT 1",
        {"i": image_id, "p": pattern_id},
    )
    if not rows:
        raise data.NotFound(f"pattern {pattern_id!r} has no stored firing on image {image_id!r}")
    row = rows[0]
    picture = explorer.pictures.image(row["path"])
    tile = patch(
        picture,
        float(row["x"]),
        float(row["y"]),
        float(row["rf_size"] or 1.0),
        float(row["input_size"] or 224),
        explorer.pictures.box_for(row["model_id"], row["path"]),
    )
    return Response(png_bytes(tile), media_type="image/png", headers=_cache_headers())


def _cache_headers() -> dict[str, str]:
    return {"Cache-Control": "private, max-age=300"}


def image_png(request: Request) -> Response:
    """A stored image, by its id only, re-encoded as PNG."""
    explorer = _explorer(request)
    row = data.image_row(explorer.store, _id(request, "image_id"))
    picture = explorer.pictures.image(row["path"])
    return Response(png_bytes(picture), media_type="image/png", headers=_cache_headers())


def image_page(request: Request) -> Response:
    """A stored image: its stored firings by model and layer, and the explain form."""
    explorer = _explorer(request)
    row = data.image_row(explorer.store, _id(request, "image_id"))
    groups = data.image_firings(explorer.store, row["image_id"])
    models = data.complete_models(explorer.store)
    fired_models = sorted({g["model_id"] for g in groups})
    return _page(
        request,
        "image.html",
        image=row,
        groups=groups,
        models=models,
        default_model=fired_models[0] if fired_models else (models[0] if models else None),
        name=Path(str(row["path"] or "")).name,
    )


def explain_form(request: Request) -> Response:
    """Pick a mined image or upload one, and a model."""
    explorer = _explorer(request)
    models = data.complete_models(explorer.store)
    chosen = request.query_params.get("model") or (models[0] if models else None)
    if chosen is not None and chosen not in models:
        raise data.NotFound(f"no complete model {chosen!r} in this store")
    samples = data.sample_images(explorer.store, chosen) if chosen else []
    return _page(
        request,
        "explain.html",
        models=models,
        chosen=chosen,
        samples=samples,
        max_mb=explorer.max_upload_bytes / 1024 / 1024,
        max_mp=explorer.max_upload_pixels / 1e6,
    )


def _parse_box(text: str) -> Box | None:
    if not text.strip():
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not (values[2] > values[0] and values[3] > values[1]):
        raise InputError(f"bad box {text[:60]!r}: write x0,y0,x1,y1 in image pixels, x1>x0, y1>y0")
    return values[0], values[1], values[2], values[3]


async def explain_start(request: Request) -> Response:
    """Start explaining an upload or a stored image; answer with the job page's address."""
    from starlette.concurrency import run_in_threadpool

    explorer = _explorer(request)
    if not same_origin(request):
        raise HTTPException(403, "explanations start only from the explorer's own pages")
    explorer.explainer.check_room()  # a full queue answers 429 before the upload is read
    form = await _explain_form_data(request, explorer.max_upload_bytes)
    model_id = str(form.get("model") or "")
    if model_id not in await run_in_threadpool(data.complete_models, explorer.store):
        raise data.NotFound(f"no complete model {model_id[:80]!r} to explain with")
    box = _parse_box(str(form.get("box") or ""))
    upload, image_id = form.get("image"), str(form.get("image_id") or "")
    if isinstance(upload, UploadFile) and upload.filename:
        job = await _explain_upload(explorer, model_id, upload, box)
    elif image_id:
        job = await _explain_stored(explorer, model_id, image_id, box)
    else:
        raise InputError("choose an image file to upload, or a stored image")
    return RedirectResponse(f"/explain/{job.job_id}", status_code=303)


async def _explain_form_data(request: Request, max_upload_bytes: int) -> FormData:
    """The explain form, refused (411/413/400) before it is read when it cannot be right."""
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length")
    if not length.isdigit() or int(length) > max_upload_bytes + 64 * 1024:
        raise HTTPException(413, f"the upload is larger than {max_upload_bytes // 1024} KiB")
    try:
        return await request.form(max_files=1, max_fields=8)
    except HTTPException:
        raise
    except Exception as error:  # a malformed multipart body
        raise InputError(f"the form cannot be read ({type(error).__name__})") from None


async def _explain_upload(
    explorer: _Explorer, model_id: str, upload: UploadFile, box: Box | None
) -> Job:
    """Decode an uploaded image into a folder of ours and submit it."""
    from starlette.concurrency import run_in_threadpool

    content = await upload.read(explorer.max_upload_bytes + 1)
    if len(content) > explorer.max_upload_bytes:
        raise HTTPException(
            413, f"the upload is larger than {explorer.max_upload_bytes // 1024} KiB"
        )
    folder = new_job_folder()
    path = folder / "upload.png"  # our name, never the client's
    try:
        await run_in_threadpool(_decode_to, content, path, explorer.max_upload_pixels)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    name = Path(upload.filename or "").name[:120] or "upload"
    return explorer.explainer.submit(model_id, path, image_name=name, box=box, folder=folder)


def _decode_to(content: bytes, path: Path, max_pixels: int) -> None:
    """Decode an upload (a few at a time: a large image is big while decoded) to a PNG file."""
    with _DECODES:
        decode_upload(content, max_pixels=max_pixels).save(path, "PNG")


async def _explain_stored(
    explorer: _Explorer,
    model_id: str,
    image_id: str,
    box: Box | None,
) -> Job:
    """Submit a stored image, with the object box of the model's annotations if none is given."""
    from starlette.concurrency import run_in_threadpool

    row = await run_in_threadpool(data.image_row, explorer.store, image_id[:_MAX_ID])
    if box is None:
        box = explorer.pictures.box_for(model_id, row["path"])
    return explorer.explainer.submit(
        model_id,
        Path(row["path"]),
        image_name=Path(str(row["path"])).name,
        image_id=row["image_id"],
        box=box,
        folder=new_job_folder(),
    )


def _job(request: Request) -> Any:
    job_id = str(request.path_params["job_id"])
    job = _explorer(request).explainer.get(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise data.NotFound("no such explanation (it may have been dropped): start it again")
    return job


def job_page(request: Request) -> Response:
    """An explanation job: its progress, then prediction, fired patterns, parts, heat map."""
    job = _job(request)
    return _page(request, "job.html", job=job, status=job.status())


def job_status(request: Request) -> Response:
    """The job's state as JSON, for the progress bar."""
    return JSONResponse(_job(request).status())


def job_picture(request: Request) -> Response:
    """The job's heat map, or the uploaded image as the server decoded it."""
    job = _job(request)
    what = request.path_params["what"]
    content = job.picture(what)
    if content is None:
        raise data.NotFound(f"the explanation has no {what} picture yet")
    return Response(content, media_type="image/png")


def parts_page(request: Request) -> Response:
    """Every stored And-Or graph of a model."""
    model_id = _id(request, "model_id")
    parts = data.parts_detail(_explorer(request).store, model_id)
    return _page(request, "parts.html", model_id=model_id, parts=parts)


def compare_index(request: Request) -> Response:
    """The model pairs with stored matches."""
    return _page(request, "compare_index.html", pairs=data.compared_pairs(_explorer(request).store))


def compare_page(request: Request) -> Response:
    """Two models' match matrix per layer pair; one cell's matches; unmatched patterns."""
    store = _explorer(request).store
    a, b = _id(request, "a"), _id(request, "b")
    detail = data.compare_detail(store, a, b)
    la, lb = request.query_params.get("la"), request.query_params.get("lb")
    pair = data.layer_pair_matches(store, a, la, b, lb) if la and lb else None
    unmatched_layer = request.query_params.get("unmatched")
    unmatched = data.unmatched_patterns(store, a, b, unmatched_layer) if unmatched_layer else None
    return _page(
        request,
        "compare.html",
        c=detail,
        la=la,
        lb=lb,
        pair=pair,
        unmatched_layer=unmatched_layer,
        unmatched=unmatched,
    )


# queries -------------------------------------------------------------------------------------


def _cells(column: str, value: Any) -> list[tuple[str, str | None]]:
    """A result cell as (text, link) pieces: pattern ids link to patterns, image ids to images."""
    if isinstance(value, list | tuple):
        pieces: list[tuple[str, str | None]] = []
        for item in value:
            pieces += _cells(column, item)
        return pieces
    value = data.plain(value)
    if isinstance(value, str):
        if data.PATTERN_ID.match(value):
            return [(value, pattern_href(value))]
        if column in ("image_id", "image") and 0 < len(value) <= _MAX_ID:
            return [(value, "/image/" + quote(value, safe=""))]
        return [(value, None)]
    if isinstance(value, float):
        return [(f"{value:.6g}", None)]
    if isinstance(value, dict):
        return [(json.dumps(value, default=str), None)]
    return [("" if value is None else str(value), None)]


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    shown = rows[: data.ROW_LIMIT]
    return {
        "columns": columns,
        "rows": [[_cells(c, row.get(c)) for c in columns] for row in shown],
        "total": len(rows),
        "shown": len(shown),
    }


def run_user_query(
    store: ReaderPool, cypher: str, params: dict[str, Any], limit_s: float = QUERY_TIMEOUT_S
) -> list[dict[str, Any]]:
    """User Cypher under the same policy as ``explgraph query`` without ``--write`` (a
    read-only store handle and ``write=False``, so the engine refuses any change), after
    :func:`~explgraph.web.console.check_console_statement` refused clauses that reach beyond
    the graph (the store's own classifier decides both), stopped after ``limit_s`` seconds.

    Raises:
        ReadOnlyViolation: a write, or a file / extension / database / procedure clause.
        InputError: parameters the engine cannot bind.
        QueryTimeLimit: it ran past ``limit_s``.
        StoreError: anything else the engine refused.
    """
    check_console_statement(cypher)
    try:
        return store.run_limited(lambda reader: reader.query(cypher, params), limit_s)
    except ExplGraphError:
        raise
    except (ValueError, TypeError, OverflowError, RuntimeError) as error:
        raise InputError(
            f"the store cannot run this query with these parameters: {error}"
        ) from None


def query_page(request: Request) -> Response:
    """The Cypher console and the canned queries."""
    from queries.canned import CANNED

    cypher = request.query_params.get("cypher", "")
    if cypher.strip() and not same_origin(request):
        raise HTTPException(403, "Cypher runs only from the explorer's own query page")
    raw_params = request.query_params.get("params", "").strip()
    table, error, status = None, None, 200
    if cypher.strip():
        try:
            params = json.loads(raw_params) if raw_params else {}
            if not isinstance(params, dict):
                raise InputError('parameters must be a JSON object, e.g. {"model": "m"}')
            explorer = _explorer(request)
            table = _table(run_user_query(explorer.store, cypher, params, explorer.query_timeout_s))
        except json.JSONDecodeError as bad:
            error, status = f"parameters are not valid JSON: {bad.msg}", 400
        except ExplGraphError as refused:
            error, status = str(refused), _status_of(refused)
    return _page(
        request,
        "query.html",
        status_code=status,
        cypher=cypher,
        raw_params=raw_params,
        table=table,
        error=error,
        canned=list(CANNED.values()),
    )


def canned_page(request: Request) -> Response:
    """One canned query: its parameter form, and its rows once run."""
    from queries.canned import CANNED, get_canned, parse_params, run_canned

    name = _id(request, "name")
    if name not in CANNED:
        raise data.NotFound(f"no canned query {name!r}; the query page lists them")
    query = get_canned(name)
    given = {p.name: request.query_params.get(p.name) for p in query.params}
    table, error, status = None, None, 200
    if "run" in request.query_params:
        missing = [p.name for p in query.params if p.required and not given[p.name]]
        try:
            if missing:
                raise InputError(f"fill in {', '.join(missing)}")
            pairs = [f"{k}={v}" for k, v in given.items() if v is not None]
            bound, explorer = parse_params(pairs), _explorer(request)
            try:
                rows = explorer.store.run_limited(
                    lambda reader: run_canned(reader, query.name, bound), explorer.query_timeout_s
                )
            except (ValueError, TypeError, OverflowError, RuntimeError) as unbound:
                raise InputError(f"the store cannot bind these parameters: {unbound}") from None
            table = _table(rows)
        except ExplGraphError as refused:
            error, status = str(refused), _status_of(refused)
    values = {
        p.name: given[p.name] if given[p.name] is not None else ("" if p.required else p.default)
        for p in query.params
    }
    return _page(
        request,
        "canned.html",
        status_code=status,
        query=query,
        values=values,
        table=table,
        error=error,
    )


# errors and middleware -----------------------------------------------------------------------


def _status_of(error: Exception) -> int:
    if isinstance(error, data.NotFound | UnknownModel):
        return 404
    if isinstance(error, ReadOnlyViolation):
        return 403
    if isinstance(error, StoreUnavailable):
        return 503
    return 400  # bad input, a query that does not parse, anything else the store refuses


async def _explgraph_error(request: Request, error: Exception) -> Response:
    status = _status_of(error)
    return _error_page(request, status, str(error))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    response = _error_page(request, error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


async def _queue_full(request: Request, error: Exception) -> Response:
    assert isinstance(error, QueueFull)
    response = _error_page(request, 429, str(error))
    response.headers["Retry-After"] = str(error.retry_after)
    return response


async def _server_error(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path, exc_info=error)
    return _error_page(request, 500, "something went wrong on the server (see its log)")


def _error_page(request: Request, status: int, message: str) -> Response:
    if request.url.path.endswith((".png", "/status")):
        return Response(message, status_code=status, media_type="text/plain")
    explorer = request.app.state.explorer
    context = {"status": status, "message": message}
    return render(explorer.templates, request, "error.html", context, status)


class _Fresh:
    """Before each request, move the store's handles to its newest snapshot if another process
    wrote it (a ``stat`` of the store files; the reopen itself on a worker thread), and forget
    what the pictures kept from the old one (a re-mined model's annotation boxes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.concurrency import run_in_threadpool

        if scope["type"] == "http":
            explorer: _Explorer = scope["app"].state.explorer
            if explorer.store.changed() and await run_in_threadpool(explorer.store.refresh):
                explorer.pictures.forget()
        await self.app(scope, receive, send)


class _Headers:
    """Security headers on every response, and ``Server-Timing`` with the server time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000.0
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"server-timing", f"app;dur={took:.1f}".encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _routes() -> list[Route | Mount]:
    """The explorer's pages, pictures and forms; a page or picture that meets a stored value
    it cannot read answers with a notice (:func:`explgraph.web.problems.tolerant`)."""

    def page(path: str, handler: Callable[[Request], Response]) -> Route:
        return Route(path, tolerant(handler, lambda request: _explorer(request).templates))

    return [
        page("/", models_page),
        page("/model/{model_id}", model_page),
        page("/model/{model_id}/layer/{layer}", layer_page),
        page("/model/{model_id}/layer/{layer}/filter/{index:int}", filter_page),
        page("/model/{model_id}/parts", parts_page),
        page("/pattern/{pattern_id:path}", pattern_page),
        page("/patch.png", patch_png),
        page("/image/{image_id}", image_page),
        page("/img/{image_id}.png", image_png),
        page("/explain", explain_form),
        Route("/explain", explain_start, methods=["POST"]),
        page("/explain/{job_id}", job_page),
        Route("/explain/{job_id}/status", job_status),
        Route("/explain/{job_id}/{what:str}.png", job_picture),
        page("/compare", compare_index),
        page("/compare/{a}/{b}", compare_page),
        page("/query", query_page),
        page("/query/{name}", canned_page),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


# long by design: flat table (the app's options, each passed on once)
def create_app(
    store_spec: str,
    *,
    cache_dir: Path,
    device: str = "auto",
    allowed_hosts: list[str] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_pixels: int = MAX_UPLOAD_PIXELS,
    warm: bool = True,
    store_settings: StoreSettings | None = None,
    query_timeout_s: float = QUERY_TIMEOUT_S,
    max_waiting_jobs: int = MAX_WAITING,
    checkpoints: Checkpoints = ((), ()),
) -> Starlette:
    """The explorer over the store ``store_spec``, opened read-only for the app's lifetime.

    Args:
        store_spec: an embedded store folder or a Bolt URI.
        cache_dir: the feature cache mining used (explaining an image reads the training std).
        device: where explanations run (``auto``, ``cpu``, ``cuda[:N]``).
        allowed_hosts: ``Host`` headers accepted (``None``: the loopback names, which keeps
            other web sites from reading a local explorer through DNS rebinding; ``["*"]``:
            any).
        max_upload_bytes, max_upload_pixels: upload limits.
        warm: count every model's nodes and edges on a background thread right away, so the
            first visit to the models page does not wait for it (about 2 s on a VGG-16 store).
        store_settings: Bolt credentials (``explgraph serve`` reads them from the environment).
        query_timeout_s: time limit of one console or canned query, seconds.
        max_waiting_jobs: explanations that may wait behind the running one (more: 429).
        checkpoints: where explaining looks for a model's CNN checkpoint that has moved
            (``explgraph serve --model-file``, beside the store, ``$EXPLGRAPH_MODEL_PATH``).

    Raises:
        StoreError: the store cannot be opened read-only (missing, unreachable).
    """
    store = ReaderPool(store_spec, settings=store_settings)
    explainer = Explainer(
        store_spec,
        cache_dir,
        device,
        settings=store_settings,
        max_waiting=max_waiting_jobs,
        checkpoints=checkpoints,
    )
    explorer = _Explorer(store, explainer, max_upload_bytes, max_upload_pixels, query_timeout_s)
    hosts = allowed_hosts if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app = Starlette(
        routes=_routes(),
        middleware=[
            Middleware(_Headers),
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
            Middleware(SlashSafePaths),
            Middleware(_Fresh),
        ],
        exception_handlers={
            ExplGraphError: _explgraph_error,
            HTTPException: _http_error,
            QueueFull: _queue_full,
            Exception: _server_error,
        },
    )
    app.state.explorer = explorer
    if warm:
        threading.Thread(target=_warm, args=(explorer,), name="explorer-warm", daemon=True).start()
    return app


def _warm(explorer: _Explorer) -> None:
    try:
        explorer.counts.get(explorer.store)
    except Exception:  # the page that needs the counts will report the problem
        log.debug("warming the model counts failed", exc_info=True)


def stop_app(app: Starlette) -> None:
    """Stop what runs now (the server is stopping): every store query is interrupted and new
    ones are refused, the explanation's worker process is ended. Quick; safe on any thread."""
    explorer: _Explorer = app.state.explorer
    explorer.store.stop()
    explorer.explainer.stop()


def close_app(app: Starlette) -> None:
    """Stop everything and release the app's store handles and job folders."""
    explorer: _Explorer = app.state.explorer
    explorer.explainer.close()
    explorer.store.close()


__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "QUERY_TIMEOUT_S",
    "close_app",
    "create_app",
    "run_user_query",
    "stop_app",
]
