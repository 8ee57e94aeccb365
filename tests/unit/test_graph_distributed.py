"""Data-parallel learning: two gloo processes on loopback learn the same graph as one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from miner.graph import ExplanatoryGraph, learn_graph
from miner.graph import distributed as mdist
from tests.unit.test_graph_learning import assert_same_graph
from tests.unit.test_graph_planted import planted, settings

IMAGES = 21  # odd on purpose: the shards differ in size


def _worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world
    )
    try:
        features, _ = planted(IMAGES)
        graph = learn_graph(features, settings(iterations=4, chunk_size=4))
        graph.save(Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_shards_cover_every_image_once() -> None:
    assert mdist.world() == (0, 1)
    assert mdist.shard(7) == (0, 7)
    flags = torch.tensor([True, False, True])
    assert torch.equal(mdist.gather_rows(flags, 3, 0), flags)


@pytest.mark.slow
def test_two_processes_learn_the_graph_of_one(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    features, _ = planted(IMAGES)
    single = learn_graph(features, settings(iterations=4, chunk_size=4))
    rank0 = ExplanatoryGraph.load(tmp_path / "rank0.pt")
    rank1 = ExplanatoryGraph.load(tmp_path / "rank1.pt")
    assert_same_graph(rank0, rank1, exact=True)
    assert_same_graph(single, rank0, exact=False)
