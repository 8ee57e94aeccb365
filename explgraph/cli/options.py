"""Options that many commands declare, written once as ``Annotated`` aliases.

A command writes ``device: Device = "auto"``; the flag name and the help text live here, so
``--device`` reads the same in every command's help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Device = Annotated[
    str, typer.Option("--device", help="Where to run the CNN and the graph: auto, cpu, cuda[:N].")
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Feature cache and checkpoints (default: $EXPLGRAPH_CACHE or ~/.cache/explgraph).",
        show_default=False,
    ),
]
ModelFile = Annotated[
    Path | None,
    typer.Option(
        "--model-file",
        help="The CNN checkpoint the model was mined from, where it is now (verified by its "
        "SHA-256; default: searched beside the store and on $EXPLGRAPH_MODEL_PATH).",
        show_default=False,
    ),
]
ModelFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--model-file",
        help="A model's CNN checkpoint where it is now (repeatable; verified by its SHA-256; "
        "default: searched beside the store and on $EXPLGRAPH_MODEL_PATH).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Label = Annotated[
    str | None,
    typer.Option(
        "--label",
        help="Images of this category (default: the one the model was mined on).",
        show_default=False,
    ),
]
Split = Annotated[
    str | None,
    typer.Option("--split", help="Only this split (default: all).", show_default=False),
]
Force = Annotated[bool, typer.Option("--force", help="Replace existing output files.")]

__all__ = ["CacheDir", "Device", "Force", "Json", "Label", "ModelFile", "ModelFiles", "Split"]
