"""What a mine run tells the user on its own: a folder without splits is mined whole, and a graph
without PARENT edges is flagged with the reason (issue 23)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from explgraph.workflows.mine.plan import MinePlan, split_to_mine
from explgraph.workflows.mine.request import MineRequest, MineSummary
from explgraph.workflows.mine.workflow import no_parent_edges
from miner.data.records import Dataset, ImageRecord
from miner.graph import GraphSettings


def _dataset(*splits: str | None) -> Dataset:
    records = tuple(ImageRecord(Path(f"{i}.png"), split=s) for i, s in enumerate(splits))
    return Dataset("d", Path("d"), records)


def _request(**given: Any) -> MineRequest:
    return MineRequest(model="toy", images=Path("imgs"), cache_dir=Path("cache"), **given)


def test_a_dataset_without_splits_is_mined_whole_and_said() -> None:
    split, notes = split_to_mine(_dataset(None, None), _request(label="bird"))
    assert split is None
    assert notes == [
        "imgs has no splits (no annotation file assigns them): mining all its images labelled "
        "'bird', not only split 'train'"
    ]


@pytest.mark.parametrize(("splits", "asked"), [(("train", "test"), "train"), ((None,), None)])
def test_a_split_is_kept_when_there_are_splits_or_none_was_asked(
    splits: tuple[str | None, ...], asked: str | None
) -> None:
    assert split_to_mine(_dataset(*splits), _request(split=asked)) == (asked, [])


def _plan(layers: list[str], **settings: Any) -> MinePlan:
    return MinePlan(
        dataset_name="d",
        records=[],
        box_skipped=[],
        model=None,  # type: ignore[arg-type]  # not read
        layers=layers,
        model_id="m",
        settings=GraphSettings(**settings),
        digest="0",
        notes=[],
    )


@pytest.mark.parametrize(
    ("plan", "why"),
    [
        (_plan(["a"]), "only one layer was mined (a)"),
        (_plan(["a", "b"], use_parents=False), "learned without parents"),
        (_plan(["a", "b"], iterations=1), "1 EM iteration(s) per layer"),
        (_plan(["a", "b"], iterations=0), "--iterations 2 or more (default 20)"),
        (_plan(["a", "b"]), "no candidate parent was kept"),
    ],
)
def test_no_parent_edges_says_why(plan: MinePlan, why: str) -> None:
    warning = no_parent_edges(plan)
    assert warning.startswith("warning: m was written with 0 PARENT edges: ")
    assert why in warning


def test_the_summary_ends_with_its_notes() -> None:
    summary = MineSummary("m", False, 3, [], [], 0, 5, 1.0, notes=["warning: x"])
    assert summary.text().splitlines()[-2:] == ["  0 PARENT edges, 5 FIRES edges", "warning: x"]
