"""The domain check's arithmetic (queries/domain.py) on hand-made mining distributions."""

from __future__ import annotations

import pytest
import torch

from queries.domain import MiningReference, measure_domain


def reference(fired: list[list[float]], beyond: list[list[float]]) -> MiningReference:
    """Two layers of 10 patterns; reference score 1 and best score 2 for every pattern."""
    shares = torch.cat([torch.tensor(fired), torch.tensor(beyond)], dim=1).double()
    totals = torch.stack([shares[:, :2].mean(1), shares[:, 2:].mean(1)], dim=1)
    return MiningReference(
        quantile=0.9,
        layer_names=["low", "high"],
        reference=[torch.ones(10, dtype=torch.float64)] * 2,
        best=[torch.full((10,), 2.0, dtype=torch.float64)] * 2,
        shares=shares,
        totals=totals,
    )


MINING = reference(
    fired=[[0.1, 0.2], [0.2, 0.2], [0.3, 0.4]], beyond=[[0.1, 0.1], [0.0, 0.2], [0.1, 0.1]]
)


def scores(
    low_fired: int, low_beyond: int, high_fired: int, high_beyond: int
) -> list[torch.Tensor]:
    """One image's scores: ``*_fired`` patterns at 1.5 (fired), ``*_beyond`` at 3 (beyond)."""
    out = []
    for fired, beyond in ((low_fired, low_beyond), (high_fired, high_beyond)):
        row = torch.zeros(10, dtype=torch.float64)
        row[:fired] = 1.5
        row[fired : fired + beyond] = 3.0
        out.append(row[None])
    return out


def test_an_image_like_the_mining_images_passes() -> None:
    (check,) = measure_domain(MINING, scores(2, 0, 2, 1))  # fired counts beyond ones too
    assert check.fired == pytest.approx(0.25)  # 5 of 20 patterns at or above the reference
    assert check.beyond == pytest.approx(0.05)
    # "high": 3 of 10 fired, against the mining images' most, 0.4 (image 2)
    assert (check.excess, check.excess_layer) == (pytest.approx(0.3 / 0.4), "high")
    assert not check.outside and check.warning() is None


def test_an_image_where_more_patterns_fire_than_on_any_mining_image_is_flagged_once() -> None:
    (check,) = measure_domain(MINING, scores(4, 0, 0, 0), [("bird", 0.9)])
    # "low": 4 of 10 fired, against the mining images' most, 0.3
    assert (check.excess, check.excess_layer) == (pytest.approx(0.4 / 0.3), "low")
    assert check.outside
    warning = check.warning()
    assert warning is not None and "\n" not in warning
    assert warning.startswith("warning: this image is outside what the graph has seen")
    assert "40.0% of the patterns of low fired" in warning
    assert "bird 90.0%" in check.line()
    assert check.to_dict()["outside"] is True


def test_beyond_shares_are_reported_but_do_not_decide() -> None:
    (check,) = measure_domain(MINING, scores(0, 1, 0, 2))  # above the best, few fired
    assert check.beyond == pytest.approx(3 / 20) and check.beyond_percentile == 1.0
    assert not check.outside


def test_percentiles_place_the_image_among_the_mining_images() -> None:
    batch = [torch.cat(pair) for pair in zip(scores(0, 0, 0, 0), scores(9, 1, 9, 1), strict=True)]
    low, high = measure_domain(MINING, batch)  # two images at once
    assert (low.fired, low.fired_percentile, low.excess) == (0.0, 0.0, 0.0)
    assert high.fired_percentile == 1.0 and high.outside
