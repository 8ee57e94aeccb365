"""``explgraph serve``: the web explorer over the store, read-only.

The web stack (Starlette, uvicorn, Jinja2) is imported only when the command runs; torch only
in an explanation's worker process. SIGTERM or Ctrl-C stops running queries and the
explanation's worker at once, so the server ends within seconds even while a long query runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.loading import checkpoint_folders
from explgraph.cli.options import CacheDir, Device, ModelFiles
from explgraph.cli.state import state
from explgraph.cli.usage import usage_error

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: seconds uvicorn waits for open requests once stopped queries have answered
GRACEFUL_S = 2


# long by design: flat table (the command's options)
def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to bind. The default is reachable from this machine only; 0.0.0.0 "
        "opens the explorer to the network.",
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    cache_dir: CacheDir = None,
    model_files: ModelFiles = None,
    device: Device = "auto",
    max_upload_mb: float = typer.Option(
        8.0, "--max-upload-mb", min=0.01, help="Largest image upload, MiB."
    ),
    max_upload_megapixels: float = typer.Option(
        24.0,
        "--max-upload-megapixels",
        min=0.01,
        help="Most pixels of an uploaded image, millions.",
    ),
    query_timeout: float = typer.Option(
        10.0,
        "--query-timeout",
        min=0.1,
        help="Time limit of one console or canned query, seconds; it is stopped then.",
    ),
    explain_queue: int = typer.Option(
        8,
        "--explain-queue",
        min=0,
        help="Explanations that may wait behind the running one; more are answered 429.",
    ),
) -> None:
    """Browse the store in a web browser: models, layers, patterns, images, parts, queries."""
    from explgraph.web import close_app, create_app

    if not host.strip():
        raise usage_error("--host is empty: give an address such as 127.0.0.1")
    cli = state(ctx)
    cli.store.check()
    loopback = host in LOOPBACK
    app = create_app(
        cli.store_spec,
        cache_dir=cache_dir or default_cache_dir(),
        device=device,
        allowed_hosts=None if loopback else ["*"],
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_upload_pixels=int(max_upload_megapixels * 1_000_000),
        store_settings=cli.store_settings,
        query_timeout_s=query_timeout,
        max_waiting_jobs=explain_queue,
        checkpoints=(tuple(model_files or ()), checkpoint_folders(cli.store_spec)),
    )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"explgraph explorer on http://{shown}:{port}/ (store {cli.store_spec}, read-only)")
    if loopback:
        typer.echo(f"bound to {host}: only this machine can reach it (--host 0.0.0.0 to share)")
    else:
        typer.echo(
            f"bound to {host}: other machines can reach it; there is no login, so anyone who "
            "can reach the port can read the whole store",
            err=True,
        )
    try:
        _run(app, host, port, "warning" if cli.quiet else "info")
    finally:
        close_app(app)


def _run(app: Starlette, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` until SIGTERM / Ctrl-C; the signal first stops what runs in the app."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=GRACEFUL_S
    )
    _server_class()(config, app).run()


def _server_class() -> Callable[[uvicorn.Config, Starlette], uvicorn.Server]:
    """uvicorn's server, which on SIGTERM / SIGINT also stops the app's queries and jobs
    (uvicorn alone waits for every open request, and a long query kept it up for minutes)."""
    import uvicorn

    class ExplorerServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
            super().__init__(config)
            self._app = app

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            from explgraph.web import stop_app

            # not on the signal's own thread, which may hold a lock stop_app takes
            threading.Thread(target=stop_app, args=(self._app,), daemon=True).start()

        async def shutdown(self, sockets: Any = None) -> None:
            await super().shutdown(sockets)
            from explgraph.web import close_app

            close_app(self._app)  # uvicorn re-raises the signal after this: close here

    return ExplorerServer


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


__all__ = ["register"]
