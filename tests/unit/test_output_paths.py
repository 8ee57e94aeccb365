"""Output paths are checked before any work: folder, writability, store folders, --force."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from explgraph.cli.outputs import STORE_MARKER, check_output_file, check_output_folder
from explgraph.core.errors import InputError


def _store(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / STORE_MARKER).write_bytes(b"db")
    return folder


def test_a_new_file_in_an_existing_folder_is_fine(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "out.graphml", force=False) == tmp_path / "out.graphml"


def test_never_inside_a_store_folder(tmp_path: Path) -> None:
    store = _store(tmp_path / "store")
    for target in (store / STORE_MARKER, store / "graph.graphml", store / "sub" / "x.png"):
        (store / "sub").mkdir(exist_ok=True)
        with pytest.raises(InputError, match="is inside the store folder"):
            check_output_file(target, force=True)


def test_the_configured_store_is_protected_before_its_database_exists(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    with pytest.raises(InputError, match="inside the store folder"):
        check_output_file(
            tmp_path / "store" / "g.json", force=True, store_spec=str(tmp_path / "store")
        )
    check_output_file(tmp_path / "g.json", force=False, store_spec="bolt://localhost:7687")


def test_existing_file_needs_force(tmp_path: Path) -> None:
    (tmp_path / "out.png").write_bytes(b"old")
    with pytest.raises(InputError, match="exists; pass --force"):
        check_output_file(tmp_path / "out.png", force=False, flag="--heatmap")
    check_output_file(tmp_path / "out.png", force=True)
    assert (tmp_path / "out.png").read_bytes() == b"old"  # checking writes nothing


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"folder .*nope does not exist; create it"):
        check_output_file(tmp_path / "nope" / "x.json", force=False, flag="-o")


def test_a_folder_is_not_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder; give -o a file name"):
        check_output_file(tmp_path, force=True, flag="-o")


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        # root ignores permission bits: a read-only bind is what stops it; make one if we can
        import subprocess

        done = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(folder), str(folder)], check=False
        )
        if done.returncode != 0:
            pytest.skip("running as root without mount: permission bits do not stop root")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
            with pytest.raises(InputError, match="cannot write in"):
                check_output_file(folder / "x.png", force=False)
        finally:
            subprocess.run(["umount", str(folder)], check=False)
        return
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write in"):
            check_output_file(folder / "x.png", force=False)
    finally:
        folder.chmod(0o700)


def test_vote_map_folder_is_created_but_not_inside_a_store(tmp_path: Path) -> None:
    check_output_folder(tmp_path / "votes")
    assert (tmp_path / "votes").is_dir()
    store = _store(tmp_path / "store")
    with pytest.raises(InputError, match="inside the store folder"):
        check_output_folder(store / "votes")
    assert not (store / "votes").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file; give --vote-maps a folder"):
        check_output_folder(tmp_path / "file", flag="--vote-maps")
