"""Every bad input of issue 12 items 6-10, through the real console entry point.

Each is refused with one line (no traceback), a non-zero exit, and nothing half-written: no
store folder appears where none was meant, no cache is filled, no secret is echoed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from graphstore.settings import BoltSettings
from miner.models.toy import bundled_checkpoint
from tests.faults.runner import explgraph, one_line_error
from tests.faults.storecheck import assert_sound, expected_counts, tiny_model
from tests.helpers.ci import missing_tool
from tests.helpers.stores import open_store

MODEL = "m"


def _images(folder: Path, n: int, size: int = 128) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.new("RGB", (size, size), (40 * i % 255, 90, 160)).save(folder / f"im{i}.png")
        names.append(f"im{i}.png")
    return names


def _annotations(folder: Path, entries: list[dict[str, object]]) -> Path:
    path = folder / "annotations.json"
    path.write_text(json.dumps({"format": "explgraph-annotations/1", "images": entries}))
    return path


# item 6: memory --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_model_that_would_need_tens_of_gigabytes_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    _images(tmp_path / "data", 6)
    cache = tmp_path / "cache"
    done = explgraph(
        "--store", str(tmp_path / "store"), "mine", "bench.memory_models:two_convs",
        "--images", str(tmp_path / "data"), "--split", "", "--cache-dir", str(cache),
    )  # fmt: skip
    assert done.returncode == 1
    line = one_line_error(done)
    assert "mining needs about" in line and "--density" in line
    assert not (cache / "features").exists() or not any((cache / "features").iterdir())


# item 7: boxes, paths, skipped files -----------------------------------------------------------


def test_annotation_path_outside_the_image_root_is_refused(tmp_path: Path) -> None:
    _images(tmp_path / "data", 2)
    _annotations(tmp_path / "data", [{"file": "im0.png"}, {"file": "../../../etc/passwd"}])
    done = explgraph(
        "--store", str(tmp_path / "store"), "mine", str(bundled_checkpoint()),
        "--images", str(tmp_path / "data"), "--split", "", "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert done.returncode == 1
    assert "points outside the image root" in one_line_error(done)
    assert "--allow-outside-root" in done.stderr


def test_misspelt_annotation_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    _images(tmp_path / "data", 2)
    _annotations(tmp_path / "data", [{"file": "im0.png", "bbox": [0, 0, 9, 9]}])
    done = explgraph("dataset", "info", str(tmp_path / "data"))
    assert done.returncode in (1, 2)
    assert 'did you mean "box"' in one_line_error(done)


@pytest.mark.slow
def test_boxes_outside_the_image_are_skipped_and_every_skipped_file_is_named(
    tmp_path: Path,
) -> None:
    names = _images(tmp_path / "data", 10)
    entries: list[dict[str, object]] = [{"file": name, "box": [0, 0, 128, 128]} for name in names]
    for i in range(4):  # wholly outside: always skipped
        entries[i]["box"] = [200, 200, 300, 300]
    entries[4]["box"] = [-20, 0, 120, 128]  # partly outside: refused with --boxes refuse
    _annotations(tmp_path / "data", entries)
    cache = tmp_path / "cache"
    done = explgraph(
        "--store", str(tmp_path / "store"), "--quiet", "mine", str(bundled_checkpoint()),
        "--images", str(tmp_path / "data"), "--split", "", "--iterations", "1",
        "--device", "cpu", "--cache-dir", str(cache), "--boxes", "refuse", "--model-id", MODEL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 skipped" in done.stdout
    listed = (cache / "runs" / MODEL / "skipped.txt").read_text().splitlines()
    assert str(cache / "runs" / MODEL / "skipped.txt") in done.stdout
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == sorted(names[:5])
    assert sum("wholly outside" in line for line in listed) == 4
    assert sum("reaches outside" in line for line in listed) == 1
    with open_store(str(tmp_path / "store"), read_only=True) as store:
        assert store.describe_model(MODEL)["n_images"] == 5


# item 8: store addresses -----------------------------------------------------------------------


@pytest.mark.parametrize("address", ["garbage", "http://localhost:7474", "neo4jj://host:7687"])
def test_a_garbage_store_address_creates_nothing(tmp_path: Path, address: str) -> None:
    done = explgraph("delete", MODEL, cwd=tmp_path, NEO4J_URI=address, HOME=str(tmp_path / "h"))
    assert done.returncode == 1
    one_line_error(done)
    assert list(tmp_path.iterdir()) == []  # no store folder named after the address


def test_delete_on_a_mistyped_store_path_creates_no_store(tmp_path: Path) -> None:
    typo = tmp_path / "stroe"
    done = explgraph("--store", str(typo), "delete", MODEL, cwd=tmp_path)
    assert done.returncode == 1
    one_line_error(done)
    assert not typo.exists()


def test_mine_into_another_programs_folder_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("\\section{Intro}")
    _images(tmp_path / "data", 3)
    done = explgraph(
        "--store", str(foreign), "mine", str(bundled_checkpoint()),
        "--images", str(tmp_path / "data"),
        "--split", "", "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert done.returncode == 1
    one_line_error(done)
    assert sorted(p.name for p in foreign.iterdir()) == ["chapter1.tex"]


# item 9: credentials ---------------------------------------------------------------------------

SECRET = "s3cret-Pa55"


def test_password_in_the_uri_is_never_echoed() -> None:
    done = explgraph("--store", f"bolt://neo4j:{SECRET}@127.0.0.1:1", "models")
    assert done.returncode == 1
    one_line_error(done)
    assert SECRET not in done.stdout + done.stderr


def test_bolt_settings_repr_hides_the_password() -> None:
    settings = BoltSettings("bolt://127.0.0.1:7687", "neo4j", SECRET, None)
    assert SECRET not in repr(settings) and SECRET not in str(settings)


@pytest.mark.bolt
def test_arcadedb_peer_keeps_the_password_off_its_command_line(arcadedb_server: object) -> None:
    if isinstance(arcadedb_server, str):
        missing_tool(arcadedb_server)
    password = arcadedb_server.password  # type: ignore[attr-defined]
    seen = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            seen.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    assert not [line for line in seen if password in line and "arcadedb" in line.lower()]
    assert password not in repr(arcadedb_server)


# item 10: parameters ---------------------------------------------------------------------------


@pytest.fixture
def populated(store_spec: str) -> str:
    with open_store(store_spec) as store:
        store.write_model(tiny_model(MODEL))
    return store_spec


def test_out_of_range_integer_parameter_is_one_line(populated: str) -> None:
    done = explgraph(
        "--store", populated, "query", "MATCH (m:Model) RETURN m.model_id AS id LIMIT $limit",
        "-p", "limit=99999999999999999999999",
    )  # fmt: skip
    assert done.returncode == 1
    assert "limit" in one_line_error(done)
    assert_sound(populated, {MODEL: expected_counts(tiny_model(MODEL))})


def test_unbound_parameter_is_an_error(populated: str) -> None:
    done = explgraph(
        "--store", populated, "query", "MATCH (m:Model) WHERE m.model_id = $mid RETURN m.model_id"
    )
    assert done.returncode == 1
    assert "mid" in one_line_error(done)
