"""Run a test's function in several CPU (gloo) processes, as torchrun would run a training script.

::

    from framework.testing.ddp import join_group, spawn
    from framework.training.distributed import init_distributed, shutdown_distributed

    def _worker(rank: int, world: int, port: int, out: str) -> None:
        join_group(rank, world, port)
        init_distributed()
        try:
            ...  # collectives, an Engine, a plugin's loss
        finally:
            shutdown_distributed()

    def test_two_ranks(tmp_path):
        spawn(_worker, 2, str(tmp_path / "out.pt"))

The test process opens the rendezvous store itself on a port the OS picks (port 0) and holds it
while the workers run; the workers join it as clients, as torchrun's workers join its agent's store
(``TORCHELASTIC_USE_AGENT_STORE``). Picking a free port and releasing it before the workers bind it
would leave a window for another process to take it. Workers must leave through
:func:`~framework.training.distributed.shutdown_distributed` (a barrier, then the group's
teardown): a rank that destroys its group while another is still in a collective can abort in
gloo's threads (``terminate called without an active exception``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["join_group", "spawn"]


def join_group(rank: int, world: int, port: int) -> None:
    """Set the torchrun variables that make ``init_distributed`` (or ``dist.init_process_group`` with
    no address) join the store :func:`spawn` holds, as a client; one CPU thread per rank.

    Called first thing in a worker; returns nothing.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), TORCHELASTIC_USE_AGENT_STORE="True")
    torch.set_num_threads(1)


def spawn(worker: Callable[..., None], world: int, *args: Any) -> None:
    """Run ``worker(rank, world, port, *args)`` in ``world`` fresh processes and wait for all of them.

    ``worker`` must be importable (a module-level function). Returns when every rank exited 0;
    re-raises the first failing rank's exception (or names the signal that killed it).
    """
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    try:
        mp.spawn(worker, args=(world, store.port, *args), nprocs=world, join=True)
    finally:
        del store
