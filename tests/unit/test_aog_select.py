"""Pattern selection of part templates on planted data: fixed-offset patterns are kept, random
ones rejected, and the kept ones vote the part back within a pixel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from explgraph.core.errors import InputError
from queries.aog.select import (
    SelectionSettings,
    firing_spread,
    knee_count,
    score_candidates,
    select_patterns,
)
from queries.aog.vote import best_vote, vote_maps

SIZE = 96
N_GOOD, N_BAD, N_IMAGES = 12, 8, 10


def test_knee_count_keeps_the_high_group_before_a_sharp_drop() -> None:
    weights = np.array([1.0, 0.97, 0.95, 0.93, 0.9, 0.05, 0.04, 0.03, 0.02, 0.01])
    assert knee_count(weights) == 5


def test_knee_count_edge_cases() -> None:
    assert knee_count(np.zeros(5)) == 0
    assert knee_count(np.full(6, 0.5), max_keep=4) == 4  # no knee: as many as allowed
    assert knee_count(np.array([1.0, 0.0, 0.0]), min_keep=1) == 1
    assert knee_count(np.array([1.0, 0.9, 0.8, 0.1]), max_keep=2) == 2


def test_settings_reject_nonsense() -> None:
    with pytest.raises(InputError, match="kernel_width"):
        SelectionSettings(kernel_width=0)
    with pytest.raises(InputError, match="min_keep"):
        SelectionSettings(min_keep=5, max_keep=2)
    assert SelectionSettings.from_dict(SelectionSettings(radius=0.3).to_dict()).radius == 0.3
    with pytest.raises(InputError, match="appearance_map"):
        SelectionSettings(appearance_map="sum")


def test_appearance_map_defaults_to_all_and_older_stored_settings_keep_the_winner() -> None:
    assert SelectionSettings().appearance_map == "all"
    assert SelectionSettings.from_dict(SelectionSettings().to_dict()).appearance_map == "all"
    older = SelectionSettings().to_dict()
    del older["appearance_map"]  # an AOG stored before the setting existed
    assert SelectionSettings.from_dict(older).appearance_map == "winner"


def _planted(mirror_some: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Good patterns sit at part − Delta on every image; bad ones anywhere."""
    rng = np.random.default_rng(0)
    keys = [f"good{i}" for i in range(N_GOOD)] + [f"bad{i}" for i in range(N_BAD)]
    delta = rng.uniform(-25, 25, size=(len(keys), 2))
    deltas = pd.DataFrame({"key": keys, "dx": delta[:, 0], "dy": delta[:, 1]})
    rows = []
    for image in range(N_IMAGES):
        part = rng.uniform(30, 66, size=2)
        flip = mirror_some and image % 2 == 1
        for k, key in enumerate(keys):
            if key.startswith("good"):
                pos = part - delta[k] + rng.normal(0, 0.3, size=2)
            else:
                pos = rng.uniform(0, SIZE - 1, size=2)
            if flip:  # the image was read mirrored: FIRES show the mirror of the canonical x
                pos = np.array([SIZE - 1 - pos[0], pos[1]])
            rows.append({"key": key, "image": f"img{image}", "x": pos[0], "y": pos[1], "weight": 1})
    return deltas, pd.DataFrame(rows), delta


@pytest.mark.parametrize("mirror_some", [False, True])
def test_firing_spread_separates_fixed_from_random_offsets(mirror_some: bool) -> None:
    deltas, fires, _ = _planted(mirror_some)
    spread = firing_spread(deltas, fires, input_size=SIZE).set_index("key")
    good = spread.loc[[k for k in spread.index if k.startswith("good")], "fire_var"]
    bad = spread.loc[[k for k in spread.index if k.startswith("bad")], "fire_var"]
    assert len(good) == N_GOOD and len(bad) == N_BAD
    assert good.max() < 2.0  # px²: only the planted jitter
    assert bad.min() > 50.0
    assert (spread["fire_images"] == N_IMAGES).all()


def test_firing_spread_needs_cofiring_images() -> None:
    deltas, fires, _ = _planted()
    lonely = fires[fires["key"].isin(["good0", "good1"])]  # two candidates per image only
    assert len(firing_spread(deltas, lonely, input_size=SIZE, min_cofiring=3)) == 0


def test_selected_patterns_vote_the_planted_part_within_a_pixel() -> None:
    deltas, fires, delta = _planted()
    settings = SelectionSettings()
    spread = firing_spread(deltas, fires, input_size=SIZE)
    candidates = deltas.merge(spread, on="key", how="left").assign(
        layer=["low" if i % 2 else "high" for i in range(len(deltas))],
        confidence=1.5,
        prior_var=4.0,
    )
    scored = score_candidates(candidates, settings, SIZE)
    kept, cuts = select_patterns(scored, settings)
    assert set(kept["key"]) == {k for k in deltas["key"] if k.startswith("good")}
    assert sum(cut["kept"] for cut in cuts) == N_GOOD
    assert all(cut["rule"].startswith("knee") for cut in cuts)

    # a new image: the planted part at (40, 57); good patterns fire at part − Delta
    part = torch.tensor([40.0, 57.0])
    idx = kept.index.to_numpy()
    order = [deltas.index[deltas["key"] == key][0] for key in kept["key"]]
    positions = part[None] - torch.from_numpy(delta[order]).float()
    centres = positions + torch.tensor(kept[["dx", "dy"]].to_numpy()).float()
    maps = vote_maps(
        centres[None],
        torch.tensor(kept["weight"].to_numpy()).float()[None],
        torch.zeros(len(idx), dtype=torch.long),
        1,
        size=SIZE,
        sigma=settings.kernel_sigma(SIZE),
    )
    best = best_vote(maps)
    assert torch.dist(best.xy[0], part) <= 1.0
