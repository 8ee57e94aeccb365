"""``explgraph serve``: the web explorer over the store, read-only.

The web stack (Starlette, uvicorn, Jinja2) is imported only when the command runs; torch only
when the first image is explained.
"""

from __future__ import annotations

import typer

from explgraph.cli.environment import default_cache_dir
from explgraph.cli.loading import checkpoint_folders
from explgraph.cli.options import CacheDir, Device, ModelFiles
from explgraph.cli.state import state
from explgraph.core.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
) -> None:
    """Browse the store in a web browser: models, layers, patterns, images, parts, queries."""
    import uvicorn

    from explgraph.web import close_app, create_app

    if not host.strip():
        raise InputError("--host is empty: give an address such as 127.0.0.1")
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
        uvicorn.run(app, host=host, port=port, log_level="warning" if cli.quiet else "info")
    finally:
        close_app(app)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


__all__ = ["register"]
