"""Under torchrun, rank 0 extracts the features with every rank's threads and nobody times out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

import miner.mining as mining
from explgraph.cli.commands import mine as mine_command
from miner.graph import GraphSettings


class _Stop(Exception):
    pass


def test_extraction_threads_take_the_waiting_ranks_cores_up_to_the_machine() -> None:
    cores = os.cpu_count() or 1
    assert mining.extraction_threads(1, 1) == 1
    assert mining.extraction_threads(1, 2) == min(2, cores)
    assert mining.extraction_threads(3, 1000) == cores
    assert mining.extraction_threads(0, 4) == 1


def test_rank_zero_extracts_with_every_ranks_threads_then_restores_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[int] = []
    barriers: list[str] = []

    def extract(*_args: Any, **_kwargs: Any) -> None:
        seen.append(torch.get_num_threads())
        raise _Stop

    monkeypatch.setattr(mining.distributed, "world", lambda: (0, 2))
    monkeypatch.setattr(mining.distributed, "barrier", lambda: barriers.append("barrier"))
    monkeypatch.setattr(mining, "extract_features", extract)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(_Stop):
            mining.mine_graph(
                object(),  # type: ignore[arg-type]
                [],
                ["conv"],
                settings=GraphSettings(),
                cache_dir=tmp_path,
            )
        assert seen == [mining.extraction_threads(1, 2)]
        assert torch.get_num_threads() == 1  # restored even though extraction failed
        assert barriers == []  # rank 0 reaches its barrier only after extracting
    finally:
        torch.set_num_threads(before)


def test_torchrun_mining_joins_with_a_timeout_longer_than_feature_extraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch.distributed as dist

    calls: list[dict[str, Any]] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: calls.append({"args": a, **k}))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    rank, device = mine_command._join_torchrun("cpu")
    assert (rank, device) == (1, "cpu")
    assert calls and calls[0]["args"] == ("gloo",)
    assert calls[0]["timeout"].total_seconds() >= 12 * 3600
