"""Output paths checked before the work that fills them: one place for every command that writes.

``export -o``, the heat maps of ``explain``, ``locate --vote-maps`` and the ``compare`` PNG call
:func:`check_output_file` / :func:`check_output_folder` before they compute anything, so that
a missing or read-only folder fails in the first second, not after an hour. The rules:

* the folder must exist (a file's parent; a vote-map folder's parent) and be writable — tested
  by creating a file there, because ``os.access`` says yes to root even on read-only mounts;
* nothing is ever written inside a store folder (a folder that holds LadybugDB's
  ``graph.lbug``, or the embedded store named by ``--store``): ``export -o STORE/graph.lbug``
  once replaced the database with GraphML;
* an existing file is replaced only with ``--force``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from explgraph.core.errors import InputError

# LadybugDB's database file; a folder holding it is a store (graphstore.ladybug_engine).
STORE_MARKER = "graph.lbug"


def _store_folder(path: Path, store_spec: str | None) -> Path | None:
    """The store folder that contains ``path`` (itself included), if any."""
    stores: list[Path] = []
    if store_spec and "://" not in store_spec:
        stores.append(Path(store_spec).expanduser().resolve())
    for folder in (path, *path.parents):
        if folder in stores or (folder / STORE_MARKER).exists():
            return folder
    return None


def _writable(folder: Path, flag: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".explgraph-write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(
            f"cannot write in {folder} ({reason}); choose another {flag} or fix the permissions"
        ) from None


def _absolute(path: Path | str) -> Path:
    # resolve() follows links in the existing part, so a link into a store is caught too
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_output_file(
    path: Path | str, *, force: bool, store_spec: str | None = None, flag: str = "output path"
) -> Path:
    """``path`` if a file may be written there now; else one line saying what to change.

    Args:
        path: the file to write.
        force: replace an existing file.
        store_spec: the ``--store`` in use (an embedded store's folder is protected even
            before its database file exists).
        flag: the option that named the path, for the message (``-o``, ``--heatmap``).

    Raises:
        InputError: a folder, inside a store, a missing or read-only folder, or an existing
            file without ``force``.
    """
    given = Path(path)
    target = _absolute(given)
    if target.is_dir():
        raise InputError(f"{given} is a folder; give {flag} a file name")
    store = _store_folder(target, store_spec)
    if store is not None:
        raise InputError(f"{given} is inside the store folder {store}; write {flag} somewhere else")
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist; create it or choose another {flag}")
    _writable(folder, flag)
    if target.exists() and not force:
        raise InputError(f"{given} exists; pass --force to replace it or choose another {flag}")
    return given


def check_output_files(
    paths: Iterable[Path | str],
    *,
    force: bool,
    store_spec: str | None = None,
    flag: str = "output path",
) -> list[Path]:
    """:func:`check_output_file` for each path (e.g. a heat map and its contact sheet)."""
    return [check_output_file(p, force=force, store_spec=store_spec, flag=flag) for p in paths]


def check_output_folder(
    folder: Path | str, *, store_spec: str | None = None, flag: str = "output folder"
) -> Path:
    """``folder`` if files may be written into it (it is created when its parent exists).

    Files inside are named per input and replaced, like a cache of pictures; the folder itself
    must not be (or be inside) a store.

    Raises:
        InputError: a file, inside a store, or a folder that cannot be created or written.
    """
    given = Path(folder)
    target = _absolute(given)
    if target.exists() and not target.is_dir():
        raise InputError(f"{given} is a file; give {flag} a folder")
    store = _store_folder(target, store_spec)
    if store is not None:
        raise InputError(f"{given} is inside the store folder {store}; write {flag} somewhere else")
    if not target.exists():
        if not target.parent.is_dir():
            raise InputError(
                f"folder {target.parent} does not exist; create it or choose another {flag}"
            )
        _writable(target.parent, flag)
        target.mkdir()
    _writable(target, flag)
    return given


__all__ = ["STORE_MARKER", "check_output_file", "check_output_files", "check_output_folder"]
