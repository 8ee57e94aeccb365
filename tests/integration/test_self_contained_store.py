"""A mined store answers on its own (issue 23, item 1): the per-unit statistics, the layer
geometry and the CNN's identity live in the store with the model.

The toy CNN is mined from a copy of its checkpoint; then the store moves (a LadybugDB folder is
copied elsewhere; a Bolt store stays on its server), the feature cache is deleted, and the
training images and the checkpoint are moved away. ``locate``, ``explain``, ``evaluate parts``,
``diagnose``, ``compare`` and the explorer's explain page (``serve``) must give the same answers
as before, the checkpoint found by its SHA-256 beside the store or through ``--model-file``, and
nothing may read the training images (they are gone) or rebuild their cache entry. A store
written before (no statistics) makes ``locate`` stop with one line.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from explgraph.cli.loading import checkpoint_folders
from explgraph.web.explain_worker import Checkpoints
from explgraph.workflows.toy import TOY_LABEL
from miner.data.folder import load_dataset
from miner.data.records import ImageRecord
from miner.data.synthetic import write_synthetic
from miner.models.toy import bundled_checkpoint
from queries.aog import pick_shots, write_shots
from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_IMAGES, MinedToy
from tests.helpers.stores import env_settings, open_store

PART = "head"
MODEL = "toy_copy-bird"


def _timeless(value: Any) -> Any:
    """``value`` without its wall-clock timings (the only part of an answer allowed to move)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("seconds", "timings")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _answers(
    store: str, probe: Path, shots: Path, cache: Path, out: Path, extra: list[str]
) -> dict[str, Any]:
    """What every command that runs the stored graph on images answers (JSON, timings left out)."""
    annotations = probe / "annotations.json"
    tests = [str(r.path) for r in _test_birds(probe)]
    common = ["--cache-dir", str(cache), "--device", "cpu", "--json", *extra]
    commands = {
        "locate": ["locate", MODEL, *tests, "--part", PART],
        "explain": [
            *("explain", MODEL, tests[0], "--annotations", str(annotations)),
            *("--heatmap", str(out / "heat.png"), "--force"),
        ],
        "evaluate parts": [
            *("evaluate", "parts", MODEL, "--part", PART),
            *("--annotations", str(annotations), "--shots", str(shots)),
        ],
        "diagnose": ["diagnose", MODEL, "--annotations", str(annotations), "--no-store"],
        "compare": [
            *("compare", MODEL, MODEL, "--images", str(probe)),
            *("--annotations", str(annotations), "--max-images", "12", "--no-write"),
        ],
    }
    answers = {}
    for name, args in commands.items():
        result = run_cli(*args, *common, store=store, quiet=True)
        answers[name] = _timeless(json.loads(result.stdout))
    answers["explain"].pop("heatmap")
    return answers


def test_a_moved_store_answers_as_before_without_cache_images_or_checkpoint_path(
    store_spec: str, tmp_path: Path
) -> None:
    data, probe = tmp_path / "synth", tmp_path / "probe"
    write_synthetic(data, TOY_IMAGES, size=128, seed=0)
    shutil.copytree(data, probe)  # the images asked about: the same files, in a place that stays
    checkpoint = tmp_path / "cnn" / "toy_copy.pt"
    checkpoint.parent.mkdir()
    shutil.copyfile(bundled_checkpoint(), checkpoint)
    mined = MinedToy(store_spec, MODEL, data, tmp_path / "cache", checkpoint)
    mined.mine_into(store_spec)
    train = load_dataset(probe, probe / "annotations.json").select(split="train", label=TOY_LABEL)
    shots = write_shots(pick_shots(list(train.records), PART, 3, size=96), tmp_path / "shots.json")
    run_cli(
        *("aog", "build", MODEL, "--shots", str(shots), "--cache-dir", str(mined.cache_dir)),
        store=store_spec,
        quiet=True,
    )
    before = _answers(store_spec, probe, shots, mined.cache_dir, tmp_path, [])
    with open_store(store_spec, read_only=True) as store:
        key = store.describe_model(MODEL)["params"]["features_key"]

    # the move: the cache deleted, the training images and the checkpoint taken away
    shutil.rmtree(mined.cache_dir)
    shutil.move(data, tmp_path / "images-elsewhere")
    if Path(store_spec).is_dir():  # LadybugDB: the store folder copied, the checkpoint beside it
        moved_store = tmp_path / "other-machine" / "store"
        shutil.copytree(store_spec, moved_store)
        shutil.rmtree(store_spec)
        shutil.move(checkpoint, moved_store.parent / checkpoint.name)
        spec, extra = str(moved_store), []
    else:  # Bolt: the checkpoint renamed and named by --model-file
        renamed = tmp_path / "elsewhere" / "cnn.pt"
        renamed.parent.mkdir()
        shutil.move(checkpoint, renamed)
        spec, extra = store_spec, ["--model-file", str(renamed)]
    fresh = tmp_path / "fresh-cache"
    after = _answers(spec, probe, shots, fresh, tmp_path, extra)

    for name in before:
        assert after[name] == before[name], name
    files = tuple(Path(v) for v in extra[1:])
    web = _web_explanation(spec, probe, (files, checkpoint_folders(spec)), fresh)
    assert web["parts"] == before["explain"]["parts"]  # voters too: both located as `locate`
    assert web["prediction"] == before["explain"]["prediction"]
    for shown, cli in zip(web["layers"], before["explain"]["layers"], strict=True):
        assert shown["fired"] == cli["fired"] and shown["top"][:5] == cli["top"]
    assert not (fresh / "features" / key).exists()  # the training images were never read


def _web_explanation(
    spec: str, probe: Path, checkpoints: Checkpoints, cache: Path
) -> dict[str, Any]:
    """What the explorer's explain page shows for the first test bird (the CLI's box)."""
    from explgraph.web.jobs import Explainer, new_job_folder

    record = _test_birds(probe)[0]
    explainer = Explainer(spec, cache, "cpu", settings=env_settings(), checkpoints=checkpoints)
    job = explainer.submit(
        MODEL, record.path, image_name=record.path.name, folder=new_job_folder(), box=record.box
    )
    try:
        deadline = time.monotonic() + 300
        while job.state not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        result = dict(job.result or {})
    finally:
        explainer.close()
    assert job.state == "done", job.error
    return result


def _test_birds(probe: Path) -> list[ImageRecord]:
    """The test birds that show the part, in the probe folder."""
    dataset = load_dataset(probe, probe / "annotations.json")
    records = dataset.select(split="test", label=TOY_LABEL).records
    return [r for r in records if PART in r.visible_parts()][:4]


def test_a_store_without_statistics_stops_locate_with_one_line(
    mined_toy: MinedToy, tmp_path: Path
) -> None:
    spec = mined_toy.copy_store(tmp_path / "store")
    dataset = load_dataset(mined_toy.data_dir, mined_toy.data_dir / "annotations.json")
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    shots = write_shots(pick_shots(train, PART, 3, size=96), tmp_path / "shots.json")
    cache = ["--cache-dir", str(mined_toy.cache_dir)]
    run_cli("aog", "build", mined_toy.model_id, "--shots", str(shots), *cache, store=spec)
    # what a store written before this version holds: no statistics, no identity, no version
    with open_store(spec) as store:
        store.query("MATCH (l:Layer) SET l.unit_std = NULL, l.filter_peaks = NULL", write=True)
        store.query("MATCH (m:Model) SET m.format_version = NULL, m.identity = NULL", write=True)
    image = str(dataset.select(split="test", label=TOY_LABEL).records[0].path)

    result = run_cli(
        "locate", mined_toy.model_id, image, "--part", PART, *cache, store=spec, expect=1
    )
    line = result.error_line
    assert "`explgraph locate`" in line and "`explgraph store upgrade`" in line
    assert "store format 1" in line and result.stdout == ""
    # what does not need the statistics still works
    shown = run_cli("aog", "show", mined_toy.model_id, "--part", PART, "--json", store=spec)
    assert json.loads(shown.stdout)["part"] == PART


@pytest.mark.parametrize("wrong", ["bytes", "missing"])
def test_a_wrong_model_file_is_one_line(mined_toy: MinedToy, tmp_path: Path, wrong: str) -> None:
    """The toy's checkpoint is found by its package resource, so --model-file is checked."""
    spec = mined_toy.copy_store(tmp_path / "store")
    other = tmp_path / "other.pt"
    if wrong == "bytes":
        other.write_bytes(bundled_checkpoint().read_bytes() + b"\0")
    image = str(next(mined_toy.data_dir.rglob("*.png")))
    result = run_cli(
        *("explain", mined_toy.model_id, image, "--model-file", str(other)),
        *("--heatmap", str(tmp_path / "h.png"), "--cache-dir", str(tmp_path / "c")),
        store=spec,
        expect=1,
    )
    line = result.error_line
    assert str(other) in line
    if wrong == "bytes":
        assert line.count("sha256") == 2 and "toy_vgg.pt" in line
    else:
        assert "does not exist" in line


def test_the_store_and_each_model_carry_their_format(mined_toy: MinedToy, tmp_path: Path) -> None:
    from graphstore.schema import FORMAT_VERSION
    from graphstore.versions import mark_store_format, store_format_version
    from miner.models.identity import CnnIdentity

    with open_store(mined_toy.store_spec, read_only=True) as store:
        assert store_format_version(store) == FORMAT_VERSION
        model = store.describe_model(mined_toy.model_id)
    assert model["format_version"] == FORMAT_VERSION
    identity = CnnIdentity.from_json(model["identity"])
    assert identity.resource == "assets/toy_vgg.pt" and identity.size and identity.sha256
    assert json.loads(model["boxes"])  # every mining image's box, by its stored path
    with open_store(str(tmp_path / "empty")) as store:
        assert store_format_version(store) == 1  # nothing written yet: the first format
        mark_store_format(store, FORMAT_VERSION + 1)
        mark_store_format(store)  # an older writer never lowers it
        assert store_format_version(store) == FORMAT_VERSION + 1
