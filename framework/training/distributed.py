"""Process-group helpers: torchrun detection, idempotent init, and the few collectives we need.

Every helper is a no-op (or the identity) when not distributed, so callers never branch on it.
"""

from __future__ import annotations

import gc
import os
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the torchrun environment; ``(0, 1, 0)`` without it."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def is_distributed() -> bool:
    """True when a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(backend: str | None = None) -> tuple[int, int, int]:
    """Initialise the default process group when torchrun asked for one; safe to call twice.

    Args:
        backend: ``gloo`` or ``nccl``; by default nccl when CUDA is available, else gloo.

    Returns:
        ``(rank, world_size, local_rank)``. Without torchrun variables (or with ``WORLD_SIZE=1``)
        nothing is initialised and ``(0, 1, 0)`` comes back.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return rank, world, int(os.environ.get("LOCAL_RANK", rank))
    rank, world, local_rank = env_world()
    if world <= 1:
        return 0, 1, 0
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timedelta(minutes=30))
    return rank, world, local_rank


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that logs and writes files (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op when not distributed."""
    if is_distributed():
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group together: a barrier, then destroy it (no-op when not distributed).

    Ranks that tear the group down at different moments can abort in the backend's threads, and
    NCCL warns about a group destroyed by the interpreter; every distributed run ends here.
    """
    if is_distributed():
        # Objects that hold the group (a DDP wrapper left in an unreachable reference cycle) are
        # freed now, while every rank is still here; freed later, at interpreter exit, gloo's
        # threads can abort the process.
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Return rank ``src``'s ``obj`` on every rank (pickled; for small control values only)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise max over ranks, in place; returns ``tensor``."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks, in place; returns ``tensor`` (e.g. validation totals)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise mean over ranks, in place; returns ``tensor``."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor
