"""One answer per question (issue 23): ``explain`` puts every part where ``locate`` does.

Both read the part's stored And-Or graph through :func:`queries.aog.locate.locate_part`, in the
same frame, and both say which frame they used. Before, ``explain`` cast its own votes from the
patterns that passed its firing rule and put the head elsewhere (on demo training image 000185
on the background; on 000013 nowhere near it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from miner.data.folder import load_dataset
from miner.data.records import ImageRecord
from queries.aog import build_aog, locate_part, pick_shots
from queries.explain import explain_image
from queries.loaded import LoadedGraph
from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy
from tests.helpers.stores import open_store

PART = "head"
NO_BOX = "no box: the whole image"


@dataclass(frozen=True)
class WithAog:
    store_spec: str
    mined: MinedToy
    images: list[ImageRecord]  # held-out birds and a few training birds that show the part


@pytest.fixture(scope="module")
def with_aog(mined_toy: MinedToy, tmp_path_factory: pytest.TempPathFactory) -> WithAog:
    """A copy of the mined toy store with a head AOG built from three training shots."""
    spec = mined_toy.copy_store(tmp_path_factory.mktemp("agree") / "store")
    dataset = load_dataset(mined_toy.data_dir)
    train = list(dataset.select(split="train", label=TOY_LABEL).records)
    test = list(dataset.select(split="test", label=TOY_LABEL).records)
    with open_store(spec) as store:
        loaded = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        shots = pick_shots(train, PART, 3, size=loaded.input_size)
        build_aog(store, loaded, shots)
    shown = [r for r in test + train[:3] if PART in r.visible_parts()]
    return WithAog(spec, mined_toy, shown)


@pytest.mark.slow
@pytest.mark.parametrize("boxed", [False, True], ids=["no-box", "object-box"])
def test_explain_puts_the_part_where_locate_does(with_aog: WithAog, boxed: bool) -> None:
    records = [ImageRecord(path=r.path, box=r.box if boxed else None) for r in with_aog.images]
    assert len(records) >= 5
    mined = with_aog.mined
    with open_store(with_aog.store_spec, read_only=True) as store:
        loaded = LoadedGraph.open(store, mined.model_id, cache_dir=mined.cache_dir)
        located = locate_part(store, loaded, PART, records).predictions
        explained = [explain_image(store, loaded, r.path, box=r.box) for r in records]
    side_by_side = []
    for record, where, explanation in zip(records, located, explained, strict=True):
        assert where is not None
        parts = {p.name: p for p in explanation.parts}
        assert PART in parts, f"explain found no {PART} on {record.path.name}"
        part = parts[PART]
        side_by_side.append(
            (record.path.name, (part.x, part.y, part.template), (where.x, where.y, where.template))
        )
    differ = [row for row in side_by_side if row[1] != pytest.approx(row[2], abs=1e-6)]
    assert not differ, f"explain and locate disagree (image, explain, locate): {differ}"
    for where, explanation in zip(located, explained, strict=True):
        assert where is not None
        part = next(p for p in explanation.parts if p.name == PART)
        assert (part.mirrored, [v["pattern_id"] for v in part.voters]) == (
            where.mirrored,
            [v["pattern_id"] for v in where.because],
        )
        assert explanation.frame.startswith(NO_BOX if not boxed else "frame: the object box")
    # and the answer is the annotated head (on 128 px images; locate's own accuracy is
    # tests/integration/test_aog_toy.py's subject)
    errors = [
        float(np.hypot(p[0] - r.parts[PART].x, p[1] - r.parts[PART].y))
        for r, (_, p, _) in zip(with_aog.images, side_by_side, strict=True)
    ]
    assert float(np.median(errors)) < 8.0, errors


def _positions(text: str, pattern: str) -> tuple[float, float]:
    found = re.search(pattern, text)
    assert found, text
    return float(found.group(1)), float(found.group(2))


@pytest.mark.slow
def test_both_commands_give_one_answer_and_name_the_frame(
    with_aog: WithAog, tmp_path: Path
) -> None:
    """The console commands, without a box: the same head position and the same frame line."""
    mined = with_aog.mined
    image = with_aog.images[0].path
    cache = ("--cache-dir", str(mined.cache_dir))
    located = run_cli(
        "locate",
        mined.model_id,
        image,
        "--part",
        PART,
        *cache,
        store=with_aog.store_spec,
        quiet=True,
    ).stdout
    explained = run_cli(
        "explain",
        mined.model_id,
        image,
        "--heatmap",
        tmp_path / "heat.png",
        *cache,
        store=with_aog.store_spec,
        quiet=True,
    ).stdout
    number = r"(-?[\d.]+)"
    at = rf"{PART} at \({number}, {number}\)"
    assert _positions(explained, at) == _positions(located, at)
    assert f"{NO_BOX} " in located and f"{NO_BOX} " in explained
    as_json = json.loads(
        run_cli(
            "locate",
            mined.model_id,
            image,
            "--part",
            PART,
            "--json",
            *cache,
            store=with_aog.store_spec,
            quiet=True,
        ).stdout
    )
    assert as_json["predictions"][0]["frame"].startswith(NO_BOX)


@pytest.mark.slow
def test_locate_names_the_domain_and_warns_on_a_natural_photo_only(with_aog: WithAog) -> None:
    from tests.helpers.photos import natural_photo

    mined = with_aog.mined
    bird, photo = with_aog.images[0].path, natural_photo("astronaut.png")
    out = run_cli(
        "locate",
        mined.model_id,
        bird,
        photo,
        "--part",
        PART,
        "--cache-dir",
        str(mined.cache_dir),
        store=with_aog.store_spec,
        quiet=True,
    ).stdout
    warnings = [line for line in out.splitlines() if "warning: " in line]
    assert len(warnings) == 1 and "outside what the graph has seen" in warnings[0]
    assert out.index(str(photo)) < out.index(warnings[0])  # under the photo's prediction
    assert out.count("domain: ") == 2
