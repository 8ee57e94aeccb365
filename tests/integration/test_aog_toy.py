"""Part And-Or graphs end to end on the mined toy graph: the CLI builds the head's AOG from
three training shots, locates heads on test birds and evaluates against the baselines.

Selection, localisation and evaluation do not depend on the engine, so they run on a copy of
the mined toy's embedded store. The store work they do is tested on every engine elsewhere:
the toy mined into a Bolt store (``test_mine_cli.py``), the AOG's reads and writes
(``test_aog_store.py``), the commands against a Bolt store (``test_store_cli.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from graphstore import GraphStore
from miner.data.folder import load_dataset
from queries.aog import build_aog, load_aog, locate_part, pick_shots, write_shots
from queries.aog.model import write_aog
from queries.aog.shots import ShotSet
from queries.loaded import LoadedGraph
from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy
from tests.helpers.stores import open_store

PART = "head"


def _graph(store: GraphStore, mined: MinedToy) -> LoadedGraph:
    """The mined toy graph, as the commands open it."""
    return LoadedGraph.open(store, mined.model_id, cache_dir=mined.cache_dir)


@pytest.fixture
def toy_store(mined_toy: MinedToy, tmp_path: Path) -> str:
    """A private copy of the mined toy's store (the tests write AOGs into it)."""
    return mined_toy.copy_store(tmp_path / "toy-store")


@pytest.fixture
def birds(mined_toy: MinedToy) -> tuple[ShotSet, list]:
    """Three head shots from the training birds, and the test birds."""
    dataset = load_dataset(mined_toy.data_dir, mined_toy.data_dir / "annotations.json")
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    test = [
        r
        for r in dataset.select(split="test", label=TOY_LABEL).records
        if PART in r.visible_parts()
    ]
    return pick_shots(train, PART, 3, size=96), test


def test_build_store_and_locate(
    toy_store: str, mined_toy: MinedToy, birds: tuple[ShotSet, list]
) -> None:
    shots, test = birds
    with open_store(toy_store) as store:
        report = build_aog(store, _graph(store, mined_toy), shots)
    aog = report.aog
    assert aog.normalisation == "mined"  # the mined features' std was found and used
    assert len(aog.templates) == 3
    for template in aog.templates:
        cuts = template.cuts
        assert sum(cut["kept"] for cut in cuts) == (aog.uses["template"] == template.index).sum()
        assert all(cut["kept"] <= cut["candidates"] for cut in cuts)
        assert all(cut["rule"].startswith("knee") for cut in cuts)
    # the shots are training images: their stored FIRES rows joined the candidates
    assert sum(cut["from_store"] for t in aog.templates for cut in t.cuts) > 0
    assert np.allclose(aog.uses.groupby("template")["weight"].sum(), 1.0)
    assert aog.uses["pattern_id"].str.startswith(mined_toy.model_id + "/").all()

    with open_store(toy_store, read_only=True) as store:
        loaded = load_aog(store, mined_toy.model_id, PART)
        rows = store.query(
            "MATCH (a:Part)-[:HAS_TEMPLATE]->(t:Template)-[u:USES]->(p:Pattern) "
            "WHERE a.model_id = $m RETURN count(u) AS c",
            {"m": mined_toy.model_id},
        )
        result = locate_part(store, _graph(store, mined_toy), PART, test)
    assert int(rows[0]["c"]) == len(aog.uses)
    mine = aog.uses.sort_values(["template", "pattern_id"]).reset_index(drop=True)
    back = loaded.uses.sort_values(["template", "pattern_id"]).reset_index(drop=True)
    assert list(mine["pattern_id"]) == list(back["pattern_id"])
    assert np.allclose(mine[["dx", "dy", "weight"]], back[["dx", "dy", "weight"]])
    assert loaded.settings == aog.settings and loaded.input_size == 96

    assert len(result.predictions) == len(test)
    used = set(aog.uses["pattern_id"])
    for record, prediction in zip(test, result.predictions, strict=True):
        assert prediction is not None
        x0, y0, x1, y1 = record.box
        assert x0 - 1 <= prediction.x <= x1 + 1 and y0 - 1 <= prediction.y <= y1 + 1
        assert prediction.because and {v["pattern_id"] for v in prediction.because} <= used
        assert prediction.explanation().startswith("because pattern ")
    assert set(result.seconds) == {"store", "forward", "graph", "vote"}

    # the shots' part appearance is stored with the AOG: one unit hypercolumn per shot
    assert aog.descriptors is not None and loaded.descriptors is not None
    assert aog.descriptors.shape[0] == len(shots.shots)
    assert np.allclose(np.linalg.norm(aog.descriptors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(loaded.descriptors, aog.descriptors, atol=1e-5)


def test_locate_uses_the_appearance_check_only_when_the_aog_holds_descriptors(
    toy_store: str,
    mined_toy: MinedToy,
    birds: tuple[ShotSet, list],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`aog locate` runs the method `evaluate parts` measures; AOGs stored before the
    appearance check (no descriptors) keep the stronger-vote reading."""
    import queries.aog.appearance as appearance

    shots, test = birds
    calls: list[int] = []
    real = appearance.appearance_votes

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(appearance, "appearance_votes", spy)
    with open_store(toy_store) as store:
        aog = build_aog(store, _graph(store, mined_toy), shots).aog
        assert aog.settings.orientation == "appearance"
        checked = locate_part(store, _graph(store, mined_toy), PART, test)
        assert calls
        calls.clear()
        aog.descriptors = None
        write_aog(store, aog)
        plain = locate_part(store, _graph(store, mined_toy), PART, test)
    assert not calls
    assert all(p is not None for p in checked.predictions + plain.predictions)


def test_the_saved_vote_map_is_the_one_that_decided(
    toy_store: str,
    mined_toy: MinedToy,
    birds: tuple[ShotSet, list],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With the summed map (the default) the map ``locate --vote-maps`` saves is every
    template's votes in the chosen reading, not the winning template's, and each answer lies
    where that map has votes."""
    import queries.aog.appearance as appearance
    from queries.aog.vote import votes_from_runs

    shots, test = birds
    calls: list[tuple[tuple, object]] = []
    real = appearance.appearance_votes

    def spy(*args: object, **kwargs: object) -> object:
        votes = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append((args, votes))
        return votes

    monkeypatch.setattr(appearance, "appearance_votes", spy)
    with open_store(toy_store) as store:
        aog = build_aog(store, _graph(store, mined_toy), shots).aog
        assert aog.settings.appearance_map == "all" and len(aog.templates) > 1
        locate_part(store, _graph(store, mined_toy), PART, test, vote_map_dir=tmp_path / "maps")
    assert calls
    for (stored_aog, layer_names, runs, *_), votes in calls:
        maps, xy = votes.maps, votes.xy.long()  # type: ignore[attr-defined]
        assert maps is not None
        summed = votes_from_runs(
            stored_aog,  # type: ignore[arg-type]
            layer_names,  # type: ignore[arg-type]
            runs,  # type: ignore[arg-type]
            use_mirror=votes.flipped,  # type: ignore[attr-defined]
            keep_maps=True,
            all_templates=True,
        ).maps
        assert summed is not None and torch.allclose(maps, summed)
        at_answer = maps[torch.arange(len(xy)), xy[:, 1], xy[:, 0]]
        assert bool((at_answer > 1e-3 * maps.flatten(1).amax(dim=1)).all())


def test_cli_build_locate_and_evaluate(
    toy_store: str, mined_toy: MinedToy, birds: tuple[ShotSet, list], tmp_path: Path
) -> None:
    shots, test = birds
    shots_file = write_shots(shots, tmp_path / "shots.json")
    cache = ["--cache-dir", str(mined_toy.cache_dir)]

    def cli(*args: str, expect: int = 0) -> tuple[str, str]:
        result = run_cli(*args, store=toy_store, quiet=True, expect=expect)
        return result.stdout, result.stderr

    out, _ = cli("aog", "build", mined_toy.model_id, "--shots", str(shots_file), *cache)
    assert "And-Or graph of 'head'" in out

    out, _ = cli("aog", "show", mined_toy.model_id, "--part", PART, "--json")
    assert len(json.loads(out)["templates"]) == 3

    maps = tmp_path / "maps"
    annotations = mined_toy.data_dir / "annotations.json"
    images = [str(record.path) for record in test[:2]]  # bare files: whole image as the box
    out, _ = cli(
        "locate", mined_toy.model_id, *images, "--part", PART,
        "--json", "--vote-maps", str(maps), *cache,
    )  # fmt: skip
    located = json.loads(out)
    assert [p["path"] for p in located["predictions"]] == images
    assert all(p["because"] for p in located["predictions"])
    assert len(list(maps.glob("*.png"))) == len(images)
    out, _ = cli("locate", mined_toy.model_id, images[0], "--part", PART, *cache)
    assert out.startswith(images[0]) and "because pattern" in out

    args = (
        *("evaluate", "parts", mined_toy.model_id, "--part", PART),
        *("--annotations", str(annotations), "--shots", str(shots_file), "--json", *cache),
    )
    out, _ = cli(*args)
    first = json.loads(out)
    assert set(first["baselines"]) == {
        "raw_filters", "nn_transfer", "static_prior", "facing_prior",
        "appearance_alone", "appearance_shot_prior",
    }  # fmt: skip
    assert set(first["references"]) == {"oracle_facing_prior"}
    assert all(0 <= v <= 1 for v in first["left_right_accuracy"].values())
    assert first["n_test"] == len(test) and first["n_shots"] == 3
    assert 0 <= first["aog"] < 1 and all(0 <= v < 1 for v in first["baselines"].values())
    out, _ = cli(*args)
    assert json.loads(out)["aog"] == first["aog"]  # deterministic

    _, err = cli("aog", "show", mined_toy.model_id, "--part", "tail", expect=1)
    assert err.startswith("error: ") and "aog build" in err
    assert len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "explgraph-shots/1", "part": "head", "shots": []}')
    _, err = cli("aog", "build", mined_toy.model_id, "--shots", str(bad), *cache, expect=1)
    assert "give 1 to 3" in err and len(err.strip().splitlines()) == 1
