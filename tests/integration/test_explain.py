"""``explain`` on the mined toy graph: prediction, fired patterns, heat map, parts, patches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from miner.data.folder import load_dataset
from miner.data.images import to_crop_coords
from miner.data.records import ImageRecord
from queries.explain import Explanation, explain_image, write_heatmap
from queries.loaded import LoadedGraph
from tests.helpers.cli import run_cli
from tests.helpers.mined import TOY_LABEL, MinedToy
from tests.helpers.stores import open_store


def _test_birds(mined: MinedToy) -> list[ImageRecord]:
    dataset = load_dataset(mined.data_dir)
    return list(dataset.select(split="test", label=TOY_LABEL).records)


def clutter(path: Path, size: int = 128, seed: int = 3) -> Path:
    """A background-only image: a colour gradient with random blobs, boxes and lines."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)[None, :, None]
    low, high = rng.uniform(0, 255, (2, 3))
    pixels = low + ramp * (high - low) + np.zeros((size, 1, 1))
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(6):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(5, 25)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            draw.rectangle([x - r, y - r / 2, x + r, y + r / 2], fill=colour)
    picture.save(path)
    return path


@pytest.fixture(scope="module")
def bird(mined_toy: MinedToy) -> ImageRecord:
    return _test_birds(mined_toy)[0]


@pytest.fixture(scope="module")
def explained(mined_toy: MinedToy, bird: ImageRecord) -> Explanation:
    with open_store(mined_toy.store_spec, read_only=True) as store:
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        return explain_image(store, graph, bird.path)


def test_prediction_lists_three_classes_by_probability(explained: Explanation) -> None:
    probs = [p for _, p in explained.prediction]
    assert len(probs) == 3
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-6
    assert all(isinstance(name, str) for name, _ in explained.prediction)


def test_fired_patterns_pass_the_threshold(explained: Explanation) -> None:
    assert explained.n_fired > 0
    for layer, rows in explained.fired.items():
        assert len(rows) <= explained.n_patterns[layer]
        assert all(p.ratio >= explained.threshold for p in rows)
        assert [p.ratio for p in rows] == sorted((p.ratio for p in rows), reverse=True)
        assert all(p.pattern_id.startswith(f"{explained.model_id}/{layer}/f") for p in rows)


def test_heat_map_is_hottest_on_the_object(explained: Explanation, bird: ImageRecord) -> None:
    assert bird.box is not None
    heat = explained.heatmap
    with Image.open(bird.path) as picture:
        assert heat.shape == (picture.height, picture.width)
    x0, y0, x1, y1 = bird.box
    row, col = np.unravel_index(int(heat.argmax()), heat.shape)
    assert x0 <= col + 0.5 <= x1 and y0 <= row + 0.5 <= y1
    hot = heat >= 0.5 * heat.max()  # the hottest region
    ys, xs = np.nonzero(hot)
    on_box = (xs + 0.5 >= x0) & (xs + 0.5 <= x1) & (ys + 0.5 >= y0) & (ys + 0.5 <= y1)
    area = (x1 - x0) * (y1 - y0) / heat.size
    assert on_box.mean() > max(0.5, area)  # better than a heat map spread at random


def test_heat_map_png(explained: Explanation, tmp_path: Path) -> None:
    path = tmp_path / "heat.png"
    write_heatmap(explained, path)
    with Image.open(path) as png:
        assert png.format == "PNG"
        # the image scaled up to stay readable, plus a colour bar beside it and a title above
        height, width = explained.heatmap.shape
        assert png.size[0] > width and png.size[1] > height
        pixels = np.asarray(png.convert("RGB")).astype(int)
        assert pixels.std() > 0


def test_background_only_image_fires_few_patterns(
    mined_toy: MinedToy, explained: Explanation, tmp_path: Path
) -> None:
    image = clutter(tmp_path / "clutter.png")
    with open_store(mined_toy.store_spec, read_only=True) as store:
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        background = explain_image(store, graph, image)
    assert background.n_fired < 0.5 * explained.n_fired
    assert background.n_fired < 0.05 * sum(background.n_patterns.values())  # few


def test_parts_vote_for_the_annotated_centre(
    mined_toy: MinedToy, explained: Explanation, bird: ImageRecord, tmp_path: Path
) -> None:
    """An AOG whose offsets point every fired top pattern at the head: the vote is the head."""
    assert bird.box is not None
    size = 96
    with open_store(mined_toy.store_spec, read_only=True) as store:
        size = int(store.describe_model(mined_toy.model_id)["input_size"])
    top = explained.fired[list(explained.fired)[-1]][:8]
    assert top
    head = bird.parts["head"]
    head_crop = to_crop_coords(np.array([head.x, head.y]), explained.box, size)
    seen = to_crop_coords(np.array([[p.x, p.y] for p in top]), explained.box, size)
    if explained.flipped:  # offsets live in the orientation the graph read the image in
        head_crop[0] = size - head_crop[0]
        seen[:, 0] = size - seen[:, 0]
    offsets = head_crop[None] - seen
    model_id = mined_toy.model_id
    part, template = f"{model_id}/part/head", f"{model_id}/part/head/t0"
    spec = mined_toy.copy_store(tmp_path / "store")
    with open_store(spec) as store:
        store.write_nodes(
            "Part", pd.DataFrame({"part_id": [part], "model_id": model_id, "name": "head"})
        )
        store.write_nodes(
            "Template", pd.DataFrame({"template_id": [template], "model_id": model_id, "idx": [0]})
        )
        store.write_relationships("HAS_TEMPLATE", pd.DataFrame({"src": [part], "dst": [template]}))
        store.write_relationships(
            "USES",
            pd.DataFrame(
                {
                    "src": template,
                    "dst": [p.pattern_id for p in top],
                    "dx": offsets[:, 0],
                    "dy": offsets[:, 1],
                    "weight": 1.0,
                }
            ),
        )
        graph = LoadedGraph.open(store, model_id, cache_dir=mined_toy.cache_dir)
        again = explain_image(store, graph, bird.path)
    assert [(g.name, g.n_patterns, g.template) for g in again.parts] == [("head", len(top), 0)]
    assert again.parts[0].x == pytest.approx(head.x, abs=1e-3)
    assert again.parts[0].y == pytest.approx(head.y, abs=1e-3)
    assert "head: " in again.text()


def test_cli_writes_text_heat_map_and_patches(
    mined_toy: MinedToy, bird: ImageRecord, tmp_path: Path
) -> None:
    heat = tmp_path / "bird.heat.png"
    result = run_cli(
        "explain",
        mined_toy.model_id,
        str(bird.path),
        "--heatmap",
        str(heat),
        "--patches",
        "--n-patches",
        "3",
        "--cache-dir",
        str(mined_toy.cache_dir),
        "--json",
        store=mined_toy.store_spec,
        quiet=True,
    )
    report = json.loads(result.stdout)
    assert len(report["prediction"]) == 3
    assert [row["layer"] for row in report["layers"]] == report_layers(mined_toy)
    assert heat.exists()
    sheet = Path(report["patches"])
    with Image.open(sheet) as png:
        assert png.size[1] == 3 * 64  # one row per pattern
        assert np.asarray(png).std() > 0  # real patches were drawn


def report_layers(mined: MinedToy) -> list[str]:
    with open_store(mined.store_spec, read_only=True) as store:
        return [row["name"] for row in store.describe_model(mined.model_id)["layer_summary"]]


def test_training_std_is_rebuilt_when_the_cache_is_gone(
    mined_toy: MinedToy, explained: Explanation, bird: ImageRecord, tmp_path: Path
) -> None:
    """Without the training features' cache entry, the std is extracted again from the
    recorded training images, giving the same scores."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(mined_toy.cache_dir, cache)
    with open_store(mined_toy.store_spec, read_only=True) as store:
        key = store.describe_model(mined_toy.model_id)["params"]["features_key"]
        shutil.rmtree(cache / "features" / key)
        again = explain_image(
            store, LoadedGraph.open(store, mined_toy.model_id, cache_dir=cache), bird.path
        )
    assert (cache / "features" / key).is_dir()
    assert {k: len(v) for k, v in again.fired.items()} == {
        k: len(v) for k, v in explained.fired.items()
    }
    np.testing.assert_allclose(again.heatmap, explained.heatmap, rtol=1e-5, atol=1e-8)


def test_bad_threshold_is_one_clear_error(mined_toy: MinedToy, bird: ImageRecord) -> None:
    from explgraph.core.errors import InputError

    with (
        open_store(mined_toy.store_spec, read_only=True) as store,
        pytest.raises(InputError, match="threshold must be positive"),
    ):
        graph = LoadedGraph.open(store, mined_toy.model_id, cache_dir=mined_toy.cache_dir)
        explain_image(store, graph, bird.path, threshold=0)
