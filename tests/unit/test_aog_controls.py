"""The AOG's graph-ablation controls (appearance alone; appearance x shot prior), the graph
contribution, and reading choices against the annotated facing, on planted maps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from miner.data.records import ImageRecord, Keypoint
from queries.aog.appearance import joint_peak
from queries.aog.controls import (
    ControlSettings,
    canonical_positions,
    contribution_verdict,
    control_peak,
    control_predictions,
    graph_contribution,
    shot_prior_map,
    sweep_name,
)
from queries.aog.facing import canonical_facing, faces_left, majority_facing, reading_accuracy

S = 64


def _peaks(*peaks: tuple[int, int, float], floor: float = 0.1) -> torch.Tensor:
    out = torch.full((1, S, S), floor)
    for x, y, value in peaks:
        out[0, y, x] = value
    return out


def test_shot_prior_peaks_at_the_canonical_positions_and_mirrors_for_the_mirrored_reading() -> None:
    canonical = torch.tensor([[10.5, 20.5]])
    maps = shot_prior_map(canonical, S, 0.1)
    for mirrored, x in ((False, 10), (True, S - 11)):
        flat = int(maps[mirrored].argmax())
        assert (flat % S, flat // S) == (x, 20)
    assert torch.allclose(maps[False], maps[True].flip(-1))
    # sigma is a fraction of the crop: a wider one spreads the mass
    wide = shot_prior_map(canonical, S, 0.2)[False]
    assert float(wide[20, 40]) > float(maps[False][20, 40])


def test_canonical_positions_mirror_the_shots_the_graph_read_mirrored() -> None:
    parts = np.array([[10.0, 5.0], [30.0, 7.0]])
    xy = canonical_positions(parts, [False, True], S)
    assert xy.tolist() == [[10.0, 5.0], [S - 30.0, 7.0]]


def test_appearance_alone_takes_the_best_looking_place_over_both_readings() -> None:
    sims = {False: _peaks((5, 5, 0.9)), True: _peaks((20, 20, 0.8))}
    xy, mirrored = control_peak(sims, power=8.0)
    assert xy[0].tolist() == [5.5, 5.5] and not bool(mirrored[0])


def test_shot_prior_moves_the_answer_to_the_place_and_reading_the_shots_predict() -> None:
    canonical = torch.tensor([[10.5, 20.5]])  # mirrored reading: x = 53.5 in the original frame
    sims = {False: _peaks((50, 50, 0.9)), True: _peaks((53, 20, 0.85))}
    prior = shot_prior_map(canonical, S, 0.1)
    alone_xy, alone_m = control_peak(sims, 8.0)
    prior_xy, prior_m = control_peak(sims, 8.0, prior)
    assert alone_xy[0].tolist() == [50.5, 50.5] and not bool(alone_m[0])
    assert prior_xy[0].tolist() == [53.5, 20.5] and bool(prior_m[0])


def test_the_shot_prior_control_is_the_aogs_rule_with_the_prior_as_vote_map() -> None:
    gen = torch.Generator().manual_seed(0)
    sims = {m: torch.rand(4, S, S, generator=gen) for m in (False, True)}
    canonical = torch.tensor([[12.0, 30.0], [20.0, 40.0]])
    prior = shot_prior_map(canonical, S, 0.05)
    votes = {m: prior[m][None].expand(4, S, S) for m in (False, True)}
    expected = joint_peak(votes, sims, 8.0)
    got = control_predictions(
        sims, 8.0, canonical, size=S, settings=ControlSettings(0.05, sweep=(0.05, 0.2))
    )
    assert torch.equal(got["appearance_shot_prior"][0], expected[0])
    assert torch.equal(got["appearance_shot_prior"][1], expected[1])
    assert torch.equal(got[sweep_name(0.05)][0], expected[0])  # the sweep scores the same rule
    assert set(got) == {"appearance_alone", "appearance_shot_prior", "shot_prior_sigma=0.05",
                        "shot_prior_sigma=0.2"}  # fmt: skip


def test_graph_contribution_is_the_aog_over_the_best_control_and_says_when_it_adds_nothing() -> (
    None
):
    ratio, best = graph_contribution(0.08, {"appearance_alone": 0.1, "appearance_shot_prior": 0.16})
    assert best == "appearance_alone" and math.isclose(ratio, 0.8)
    assert "cut the error" in contribution_verdict(ratio, best)
    ratio, best = graph_contribution(0.12, {"appearance_alone": 0.1, "appearance_shot_prior": 0.2})
    assert math.isclose(ratio, 1.2)
    assert "ADDS NOTHING" in contribution_verdict(ratio, best)
    assert "ADDS NOTHING" in contribution_verdict(1.0, best)  # a tie adds nothing
    nan, _ = graph_contribution(0.1, {"appearance_alone": float("nan")})
    assert math.isnan(nan)


def _record(
    head: tuple[float, float] | None, tail: tuple[float, float], visible: bool = True
) -> ImageRecord:
    parts = {"tail": Keypoint(*tail)}
    if head is not None:
        parts["head"] = Keypoint(*head, visible=visible)
    return ImageRecord(path=Path("x.png"), box=(0.0, 0.0, 100.0, 100.0), parts=parts)


def test_facing_is_head_left_of_tail_and_unknown_without_both_visible() -> None:
    records = [
        _record((10, 50), (90, 50)),  # faces left
        _record((80, 40), (20, 60)),  # faces right
        _record(None, (20, 60)),  # no head
        _record((10, 50), (90, 50), visible=False),  # head hidden
    ]
    left = faces_left(records, 100)
    assert left[:2].tolist() == [1.0, 0.0]
    assert bool(left[2:].isnan().all())


def test_a_reading_implies_the_frame_facing_flipped_when_read_mirrored() -> None:
    # shots: the graph read a left-facing shot mirrored and a right-facing one plain, so both
    # templates' frames face right; a third shot is of unknown facing
    frames = canonical_facing(torch.tensor([1.0, 0.0, float("nan")]), torch.tensor([1, 0, 1]))
    assert frames[:2].tolist() == [0.0, 0.0] and math.isnan(float(frames[2]))
    frame = majority_facing(frames.tolist())
    assert frame == 0.0
    truth = torch.tensor([1.0, 0.0, 1.0, 0.0, float("nan")])
    perfect = torch.tensor([True, False, True, False, True])  # mirrored exactly when left
    assert reading_accuracy(perfect, truth, frame) == 1.0
    assert reading_accuracy(~perfect, truth, frame) == 0.0
    assert reading_accuracy(torch.zeros(5, dtype=torch.bool), truth, frame) == 0.5
    assert math.isnan(reading_accuracy(perfect, truth, majority_facing([1.0, 0.0])))  # a split


def test_an_even_split_of_readings_leaves_the_frame_unknown() -> None:
    frames = canonical_facing(torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0, 0, 1, 1]))
    assert math.isnan(majority_facing(frames.tolist()))
    truth = torch.tensor([1.0, 0.0])
    assert math.isnan(reading_accuracy(torch.tensor([True, False]), truth, float("nan")))
