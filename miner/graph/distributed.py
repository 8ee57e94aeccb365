"""Data-parallel learning over images with ``torch.distributed``; a no-op in a single process.

Each rank takes a contiguous shard of the images; everything the M-step, the parent selection
and the layer statistics need is a sum (or a minimum) over images, so ranks all-reduce those and
end with the same graph. Use the gloo backend with ``device="cpu"`` and nccl with CUDA devices.

Launch, for example::

    torchrun --standalone --nproc-per-node 4 my_learn_script.py

where the script calls ``torch.distributed.init_process_group("gloo")`` (or ``"nccl"`` and
``device=f"cuda:{local_rank}"``) before :func:`miner.graph.learn_graph`; only rank 0 should save.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def active() -> bool:
    """Whether a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if not active():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def shard(num_images: int) -> tuple[int, int]:
    """This rank's contiguous image range ``[start, stop)`` (sizes differ by at most one)."""
    rank, size = world()
    base, extra = divmod(num_images, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_min(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise minimum over ranks in place and return it."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def gather_rows(local: torch.Tensor, total: int, start: int) -> torch.Tensor:
    """Assemble per-image rows of every rank's shard into the full ``[total, ...]`` tensor."""
    full = torch.zeros((total, *local.shape[1:]), dtype=local.dtype, device=local.device)
    full[start : start + local.shape[0]] = local
    if active():
        as_num = full if full.is_floating_point() else full.to(torch.float64)
        dist.all_reduce(as_num, op=dist.ReduceOp.SUM)
        full = as_num.to(local.dtype)
    return full


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if active():
        dist.barrier()


__all__ = ["active", "all_min", "all_sum", "barrier", "gather_rows", "shard", "world"]
