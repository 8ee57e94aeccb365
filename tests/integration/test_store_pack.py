"""``store pack`` / ``store unpack`` (issue 23, item 1): one model with its AOG and comparisons
moves from a LadybugDB store into another store on every engine, table for table the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from explgraph.core.errors import InputError
from explgraph.core.faults import FAULT_ENV, FAULT_EXIT_CODE
from explgraph.workflows.toy import TOY_LABEL
from graphstore import GraphStore
from graphstore.pack import PACK_FORMAT, TABLES, pack_model, read_manifest, unpack_model
from graphstore.schema import FORMAT_VERSION
from graphstore.versions import mark_store_format, store_format_version
from miner.data.folder import load_dataset
from queries.aog import pick_shots, write_shots
from queries.canned import run_canned
from tests.helpers.cli import run_cli
from tests.helpers.explainers import write_sample_explainers
from tests.helpers.mined import MinedToy
from tests.helpers.stores import open_store, tiny_records

REPO = Path(__file__).resolve().parents[2]


def _source(tmp_path: Path, name: str = "source", channels: int = 2, uses: int = 3) -> str:
    """A LadybugDB store with models ``a`` and ``b`` (shared images), an AOG part of ``a`` (its
    template uses ``uses`` patterns), MATCHES edges a -> b and an explainer of ``a``'s layer
    ``high`` with its control (``channels`` filters each)."""
    spec = str(tmp_path / name)
    with open_store(spec) as store:
        a, b = tiny_records("a", channels=channels), tiny_records("b")
        store.write_model(a)
        store.write_model(b)
        patterns = list(a.patterns["pattern_id"][:uses])
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
            "USES", pd.DataFrame({"src": ["a/part/head/t0"] * uses, "dst": patterns, "weight": 1.0})
        )
        store.write_relationships(
            "MATCHES",
            pd.DataFrame(
                {"src": patterns[:3], "dst": list(b.patterns["pattern_id"][:3]), "similarity": 0.5}
            ),
        )
        parts = ["head", "tail", "head", "none"][:channels]
        write_sample_explainers(store, "a", "high", parts, [0.9, 0.6, 0.5, 0.1][:channels])
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


#: the tables pack format 2 added: the model's explainer networks
_EXPLAINER_TABLES = (
    "explainers",
    "explainer_filters",
    "has_explainer",
    "explains",
    "has_explainer_filter",
)


def _explainer_answers(store: GraphStore, model_id: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of the canned queries ``explained-layers`` and ``explainer-parts``; filter
    lists sorted (engines collect in any order), numbers rounded (engines sum in any order)."""

    def same_form(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 9)
        return sorted(value) if isinstance(value, list) else value

    return {
        name: [
            {key: same_form(value) for key, value in row.items()}
            for row in run_canned(store, name, {"model": model_id})
        ]
        for name in ("explained-layers", "explainer-parts")
    }


def test_a_packed_model_carries_its_explainers(tmp_path: Path, store: GraphStore) -> None:
    source = _source(tmp_path, channels=4)
    pack = tmp_path / "a.egpack"
    with open_store(source, read_only=True) as opened:
        manifest = pack_model(opened, "a", pack)
        before = _explainer_answers(opened, "a")
    assert [manifest["counts"][name] for name in _EXPLAINER_TABLES] == [2, 8, 2, 2, 8]
    layers = before["explained-layers"]
    assert [(r["layer"], r["control"], r["p_mean"]) for r in layers] == [
        ("high", False, 0.8),
        ("high", True, 0.7),
    ]
    parts = [(r["control"], r["part"], r["filters"]) for r in before["explainer-parts"]]
    assert parts == [
        (False, "head", [0, 2]),
        (False, "tail", [1]),
        (True, "head", [0, 2]),
        (True, "tail", [1]),
    ]

    unpack_model(store, pack)
    assert _explainer_answers(store, "a") == before
    unpack_model(store, pack, force=True)  # the replace protocol: the explainers once, not twice
    assert _explainer_answers(store, "a") == before
    repacked = tmp_path / "again.egpack"
    pack_model(store, "a", repacked)
    _assert_same(pack, repacked, skip=("matches",))  # b is not in the target
    assert store.garbage() == {"staging": {}, "unfinished": {}, "orphans": {}}


def _rewritten(pack: Path, out: Path, *, drop: tuple[str, ...], pack_format: int) -> Path:
    """A copy of ``pack`` without the tables ``drop``, its manifest saying ``pack_format``."""
    with zipfile.ZipFile(pack) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.namelist():
            if item.removesuffix(".parquet") in drop:
                continue
            data = old.read(item)
            if item == "manifest.json":
                manifest = json.loads(data)
                counts = {k: v for k, v in manifest["counts"].items() if k not in drop}
                manifest.update(pack_format=pack_format, counts=counts)
                data = json.dumps(manifest).encode()
            new.writestr(item, data)
    return out


def test_a_pack_from_before_explainers_unpacks_without_them(tmp_path: Path) -> None:
    source = _source(tmp_path)
    pack = tmp_path / "a.egpack"
    with open_store(source, read_only=True) as opened:
        pack_model(opened, "a", pack)
        pack_model(opened, "b", tmp_path / "b.egpack")
    old = _rewritten(pack, tmp_path / "old.egpack", drop=_EXPLAINER_TABLES, pack_format=1)
    with open_store(str(tmp_path / "target")) as target:
        unpack_model(target, tmp_path / "b.egpack")
        summary = unpack_model(target, old)
        assert [summary.counts[name] for name in _EXPLAINER_TABLES] == [0] * 5
        assert _explainer_answers(target, "a") == {"explained-layers": [], "explainer-parts": []}
        pack_model(target, "a", tmp_path / "again.egpack")
    _assert_same(pack, tmp_path / "again.egpack", skip=_EXPLAINER_TABLES)
    damaged = _rewritten(pack, tmp_path / "damaged.egpack", drop=("layers",), pack_format=2)
    with (
        open_store(str(tmp_path / "other")) as other,
        pytest.raises(InputError, match=r"lacks its table layers\.parquet"),
    ):
        unpack_model(other, damaged)


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
    assert "a.egpack" in out.output and "2 explainers)" in out.output  # explainer + control
    target = str(tmp_path / "target")
    unpacked = run_cli("store", "unpack", str(pack), store=target)
    assert "unpacked a" in unpacked.output and "2 explainers into" in unpacked.output
    info = run_cli("store", "info", store=target)
    assert "format: 1" in info.stdout.splitlines()  # a synthetic model carries no format 2 data
    with open_store(target) as opened:
        mark_store_format(opened, FORMAT_VERSION)
    info = run_cli("store", "info", store=target)
    assert f"format: {FORMAT_VERSION}" in info.stdout.splitlines()


_CHILD = """
import sys
from graphstore.pack import unpack_model
from tests.helpers.stores import open_store

with open_store(sys.argv[1]) as store:
    unpack_model(store, sys.argv[2], force=True)
"""


@pytest.mark.parametrize(
    ("point", "survivor"), [("replace:before-switch", "old"), ("replace:switch-marked", "new")]
)
def test_a_crash_during_unpack_leaves_the_old_model_or_the_new_one(
    tmp_path: Path, store_spec: str, point: str, survivor: str
) -> None:
    packs = {}
    for label, channels, uses in (("old", 2, 3), ("new", 3, 5)):
        with open_store(_source(tmp_path, label, channels, uses), read_only=True) as opened:
            packs[label] = tmp_path / f"{label}.egpack"
            pack_model(opened, "a", packs[label])
            if label == "old":
                pack_model(opened, "b", tmp_path / "b.egpack")
    with open_store(store_spec) as store:
        unpack_model(store, tmp_path / "b.egpack")
        unpack_model(store, packs["old"])
    env = {**os.environ, FAULT_ENV: point, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, store_spec, str(packs["new"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert child.returncode == FAULT_EXIT_CODE, child.stderr[-2000:]
    with open_store(store_spec) as store:
        store.repair()
        assert store.garbage() == {"staging": {}, "unfinished": {}, "orphans": {}}
        pack_model(store, "a", tmp_path / "after.egpack")
    _assert_same(packs[survivor], tmp_path / "after.egpack")


def test_an_unpacked_mined_model_locates_as_before(
    mined_toy: MinedToy, tmp_path: Path, store_spec: str
) -> None:
    """The mined toy with an AOG, packed from LadybugDB and unpacked into a fresh store of each
    engine: the same counts, the same store format, the same ``locate`` answer."""
    source = mined_toy.copy_store(tmp_path / "source")
    dataset = load_dataset(mined_toy.data_dir, mined_toy.data_dir / "annotations.json")
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    shots = write_shots(pick_shots(train, "head", 3, size=96), tmp_path / "shots.json")
    cache = ["--cache-dir", str(mined_toy.cache_dir), "--device", "cpu"]
    model = mined_toy.model_id
    run_cli("aog", "build", model, "--shots", str(shots), *cache, store=source, quiet=True)
    images = [str(r.path) for r in dataset.select(split="test", label=TOY_LABEL).records[:3]]
    locate = ["locate", model, *images, "--part", "head", "--json", *cache]

    def answer(spec: str) -> Any:
        found = json.loads(run_cli(*locate, store=spec, quiet=True).stdout)
        return _timeless(found)

    pack = tmp_path / "toy.egpack"
    run_cli("store", "pack", model, str(pack), store=source, quiet=True)
    run_cli("store", "unpack", str(pack), store=store_spec, quiet=True)
    with open_store(source, read_only=True) as before, open_store(store_spec) as after:
        assert after.list_models() == before.list_models()
        assert store_format_version(after) == FORMAT_VERSION == read_manifest(pack)["store_format"]
    located = answer(source)
    assert "head" in json.dumps(located)
    assert answer(store_spec) == located


def _timeless(value: Any) -> Any:
    """``value`` without its wall-clock timings."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("seconds", "timings")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_store_upgrade_brings_a_format_1_model_back(mined_toy: MinedToy, tmp_path: Path) -> None:
    """A model stripped to format 1 stops `locate` with the line naming `store upgrade`; the
    upgrade (asked to compute the statistics from the mining cache) backs the store up and
    restores the very answers of the format-2 model."""
    spec = mined_toy.copy_store(tmp_path / "store")
    model = mined_toy.model_id
    dataset = load_dataset(mined_toy.data_dir, mined_toy.data_dir / "annotations.json")
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    shots = write_shots(pick_shots(train, "head", 3, size=96), tmp_path / "shots.json")
    cache = ["--cache-dir", str(mined_toy.cache_dir), "--device", "cpu"]
    run_cli("aog", "build", model, "--shots", str(shots), *cache, store=spec, quiet=True)
    images = [str(r.path) for r in dataset.select(split="test", label=TOY_LABEL).records[:3]]
    locate = ["locate", model, *images, "--part", "head", "--json", *cache]
    before = _timeless(json.loads(run_cli(*locate, store=spec, quiet=True).stdout))
    with open_store(spec) as store:
        stored = store.describe_model(model)
        store.query("MATCH (l:Layer) SET l.unit_std = NULL, l.filter_peaks = NULL", write=True)
        store.query(
            "MATCH (m:Model) SET m.format_version = NULL, m.identity = NULL, m.boxes = NULL",
            write=True,
        )
    assert "`explgraph store upgrade`" in run_cli(*locate, store=spec, expect=1).error_line

    asked = run_cli("store", "upgrade", store=spec)  # not asked to compute: says what to run
    assert "--statistics" in asked.stdout and "format 1 -> 1" in asked.stdout
    done = run_cli("store", "upgrade", "--statistics", *cache, store=spec)
    assert "format 1 -> 2" in done.stdout
    assert list(tmp_path.glob("store.backup-*"))  # the copy made first
    with open_store(spec, read_only=True) as store:
        again = store.describe_model(model)
    for name in ("format_version", "identity", "boxes"):
        assert again[name] == stored[name], name
    assert _timeless(json.loads(run_cli(*locate, store=spec, quiet=True).stdout)) == before
    assert "nothing to upgrade" in run_cli("store", "upgrade", store=spec).stdout
