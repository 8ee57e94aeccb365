"""``store pack`` / ``store unpack`` (issue 23, item 1): one model with its AOG and comparisons
moves from a LadybugDB store into another store on every engine, table for table the same."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from explgraph.core.errors import InputError
from graphstore import GraphStore
from graphstore.pack import PACK_FORMAT, TABLES, pack_model, read_manifest, unpack_model
from graphstore.schema import FORMAT_VERSION
from graphstore.versions import mark_store_format
from tests.helpers.cli import run_cli
from tests.helpers.stores import open_store, tiny_records


def _source(tmp_path: Path) -> str:
    """A LadybugDB store with models ``a`` and ``b`` (shared images), an AOG part of ``a`` and
    MATCHES edges a -> b."""
    spec = str(tmp_path / "source")
    with open_store(spec) as store:
        a, b = tiny_records("a"), tiny_records("b")
        store.write_model(a)
        store.write_model(b)
        patterns = list(a.patterns["pattern_id"][:3])
        store.write_nodes(
            "Part", pd.DataFrame({"part_id": ["a/part/head"], "model_id": ["a"], "name": ["head"]})
        )
        store.write_nodes(
            "Template",
            pd.DataFrame(
                {"template_id": ["a/part/head/t0"], "model_id": ["a"], "part": ["head"], "idx": [0]}
            ),
        )
        store.write_relationships(
            "HAS_TEMPLATE", pd.DataFrame({"src": ["a/part/head"], "dst": ["a/part/head/t0"]})
        )
        store.write_relationships(
            "USES", pd.DataFrame({"src": ["a/part/head/t0"] * 3, "dst": patterns, "weight": 1.0})
        )
        store.write_relationships(
            "MATCHES",
            pd.DataFrame(
                {"src": patterns, "dst": list(b.patterns["pattern_id"][:3]), "similarity": 0.5}
            ),
        )
    return spec


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a pack, rows sorted, so two packs compare by content."""
    import pyarrow.parquet as pq

    with zipfile.ZipFile(path) as archive:
        frames = {n: pq.read_table(archive.open(f"{n}.parquet")).to_pandas() for n, _, _ in TABLES}
    model = frames["model"].drop(columns=["created"])
    frames["model"] = model.assign(layers=model["layers"].map(list))
    return {
        name: frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)
        for name, frame in frames.items()
    }


def _assert_same(left: Path, right: Path, *, skip: tuple[str, ...] = ()) -> None:
    one, two = _tables(left), _tables(right)
    for name in one:
        if name not in skip:
            pd.testing.assert_frame_equal(one[name], two[name], check_dtype=False, obj=name)


def test_pack_moves_a_model_with_its_aog_and_comparisons(tmp_path: Path, store: GraphStore) -> None:
    source = _source(tmp_path)
    pack = tmp_path / "a.egpack"
    with open_store(source, read_only=True) as opened:
        manifest = pack_model(opened, "a", pack)
        pack_model(opened, "b", tmp_path / "b.egpack")
    assert manifest["pack_format"] == PACK_FORMAT
    assert manifest["counts"]["parts"] == 1 and manifest["counts"]["matches"] == 3
    assert manifest["counts"]["images"] == 4 and manifest["counts"]["fires"] > 0

    first = unpack_model(store, pack)  # b is missing: its MATCHES edges cannot be written
    assert first.skipped_matches == 3 and first.notes
    with pytest.raises(InputError, match="--force"):
        unpack_model(store, pack)
    unpack_model(store, tmp_path / "b.egpack")
    again = unpack_model(store, pack, force=True)  # the replace protocol, now with b there
    assert again.skipped_matches == 0

    repacked = tmp_path / "a-again.egpack"
    pack_model(store, "a", repacked)
    _assert_same(pack, repacked)
    assert store.garbage() == {"staging": {}, "unfinished": {}, "orphans": {}}
    counts = {r["model_id"]: r for r in store.list_models()}["a"]
    with open_store(source, read_only=True) as opened:
        before = {r["model_id"]: r for r in opened.list_models()}["a"]
    assert counts == before


def test_a_newer_or_foreign_pack_is_one_line(tmp_path: Path) -> None:
    source = _source(tmp_path)
    pack = tmp_path / "a.egpack"
    with open_store(source, read_only=True) as opened:
        pack_model(opened, "a", pack)
        with pytest.raises(InputError, match="exists"):
            pack_model(opened, "a", pack)
    newer = tmp_path / "newer.egpack"
    with zipfile.ZipFile(pack) as old, zipfile.ZipFile(newer, "w") as new:
        for item in old.namelist():
            data = old.read(item)
            if item == "manifest.json":
                data = json.dumps({**json.loads(data), "pack_format": PACK_FORMAT + 1}).encode()
            new.writestr(item, data)
    with pytest.raises(InputError, match=f"pack format {PACK_FORMAT + 1}"):
        read_manifest(newer)
    (tmp_path / "junk.egpack").write_text("not a zip")
    with pytest.raises(InputError, match="not an explgraph pack"):
        read_manifest(tmp_path / "junk.egpack")
    target = str(tmp_path / "target")
    result = run_cli("store", "unpack", str(newer), store=target, expect=1)
    assert "pack format" in result.error_line


def test_pack_and_unpack_commands(tmp_path: Path) -> None:
    source = _source(tmp_path)
    pack = tmp_path / "a.egpack"
    out = run_cli("store", "pack", "a", str(pack), store=source)
    assert "a.egpack" in out.output
    target = str(tmp_path / "target")
    unpacked = run_cli("store", "unpack", str(pack), store=target)
    assert "unpacked a" in unpacked.output
    info = run_cli("store", "info", store=target)
    assert "format: 1" in info.stdout.splitlines()  # a synthetic model carries no format 2 data
    with open_store(target) as opened:
        mark_store_format(opened, FORMAT_VERSION)
    info = run_cli("store", "info", store=target)
    assert f"format: {FORMAT_VERSION}" in info.stdout.splitlines()
