"""Issue 24 method changes on planted data: the template-fit reading, equal-weight votes and the
soft distance prior of candidate selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from explgraph.core.errors import InputError
from queries.aog.build import _ShotView, template_radius
from queries.aog.fit import fit_reading, template_fit
from queries.aog.model import AndOrGraph, TemplateInfo
from queries.aog.runtime import GraphRun
from queries.aog.select import SelectionSettings, score_candidates
from queries.aog.vote import votes_from_runs

SIZE = 64
OFFSETS = [[6.0, 0.0], [-6.0, 0.0], [0.0, 8.0]]


def _aog(settings: SelectionSettings) -> AndOrGraph:
    uses = pd.DataFrame(
        {
            "template": [0, 0, 0],
            "pattern_id": ["a", "b", "c"],
            "layer": ["low", "low", "low"],
            "idx": [0, 1, 2],
            "dx": [o[0] for o in OFFSETS],
            "dy": [o[1] for o in OFFSETS],
            "weight": [1 / 3, 1 / 3, 1 / 3],
        }
    )
    templates = [TemplateInfo(0, "img", "/img.png", 30.0, 30.0)]
    return AndOrGraph("m", "head", SIZE, settings, templates, uses)


def _run(pixels: list[list[float]], confidence: list[float]) -> GraphRun:
    return GraphRun(
        [torch.tensor([pixels])],
        [torch.tensor([confidence])],
        torch.zeros(1, dtype=torch.bool),
        0.0,
    )


def test_the_reading_whose_patterns_fire_and_agree_fits_better() -> None:
    aog = _aog(SelectionSettings(reading="template_fit"))
    part = np.array([40.0, 20.0])
    agree = _run((part[None] - np.array(OFFSETS)).tolist(), [1.0, 1.0, 1.0])
    scattered = _run([[5.0, 5.0], [60.0, 5.0], [30.0, 60.0]], [1.0, 1.0, 1.0])
    silent = _run((part[None] - np.array(OFFSETS)).tolist(), [0.1, 0.1, 1.0])
    assert float(template_fit(aog, ["low"], agree)[0]) > float(
        template_fit(aog, ["low"], scattered)[0]
    )
    assert float(template_fit(aog, ["low"], agree)[0]) > float(
        template_fit(aog, ["low"], silent)[0]
    )
    assert bool(fit_reading(aog, ["low"], {False: scattered, True: agree})[0])
    assert not bool(fit_reading(aog, ["low"], {False: agree, True: silent})[0])


def test_equal_weighting_ignores_how_strongly_a_firing_pattern_fires() -> None:
    # pattern 0 fires ten times harder at a wrong place; with equal weights the two that agree win
    pixels = [[10.0, 10.0], [40.0 + 6.0, 20.0], [40.0, 12.0]]
    run = {False: _run(pixels, [4.0, 1.0, 1.0])}
    weighted = votes_from_runs(_aog(SelectionSettings(confidence_cap=10.0)), ["low"], run)
    equal = votes_from_runs(
        _aog(SelectionSettings(confidence_cap=10.0, vote_weighting="equal")), ["low"], run
    )
    assert weighted.xy[0].tolist() == pytest.approx([16.0, 10.0], abs=1.0)
    assert equal.xy[0].tolist() == pytest.approx([40.5, 20.5], abs=1.0)


def test_soft_distance_prior_weighs_far_candidates_down() -> None:
    candidates = pd.DataFrame(
        {
            "dx": [2.0, 40.0],
            "dy": [0.0, 0.0],
            "confidence": [1.0, 1.0],
            "prior_var": [1.0, 1.0],
            "fire_var": [np.nan, np.nan],
        }
    )
    hard = score_candidates(candidates, SelectionSettings(), SIZE)["weight"].to_numpy()
    soft = score_candidates(candidates, SelectionSettings(distance_sigma=0.31), SIZE)
    weight = soft["weight"].to_numpy()
    assert hard[0] == pytest.approx(hard[1])
    expected = np.exp(-(40.0**2) / (2 * (0.31 * SIZE) ** 2)) / np.exp(
        -4.0 / (2 * (0.31 * SIZE) ** 2)
    )
    assert weight[1] / weight[0] == pytest.approx(expected)


def test_new_settings_reject_nonsense() -> None:
    with pytest.raises(InputError, match="distance_sigma"):
        SelectionSettings(distance_sigma=-1)
    with pytest.raises(InputError, match="vote_weighting"):
        SelectionSettings(vote_weighting="loud")
    with pytest.raises(InputError, match="reading"):
        SelectionSettings(reading="coin")


def _view(neighbour: float) -> _ShotView:
    return _ShotView("id", "/p.png", np.zeros(2), False, [], [], (0.0, 0.0, 1.0, 1.0), neighbour)


def test_part_radius_follows_the_distance_to_the_nearest_other_part() -> None:
    fixed = SelectionSettings(radius=0.15, part_radius=False)
    sized = SelectionSettings(radius=0.15, part_radius=True, max_radius=0.3)
    views = [_view(20.0), _view(30.0)]
    assert template_radius(views, fixed, 100) == pytest.approx(15.0)
    assert template_radius(views, sized, 100) == pytest.approx(25.0)  # the shots' mean
    assert template_radius([_view(5.0)], sized, 100) == pytest.approx(15.0)  # never below radius
    assert template_radius([_view(80.0)], sized, 100) == pytest.approx(30.0)  # nor above the cap
    assert template_radius([_view(float("inf"))], sized, 100) == pytest.approx(
        15.0
    )  # no other part


def test_stored_settings_without_part_radius_read_as_off() -> None:
    stored = SelectionSettings(part_radius=False).to_dict()
    del stored["part_radius"]
    assert SelectionSettings.from_dict(stored).part_radius is False
    assert SelectionSettings().part_radius is True
