"""Launch CPU (gloo) DDP workers for tests without racing for a port.

The test process opens the rendezvous store itself on a port the OS picks (port 0) and holds it
while the workers run; the workers join it as clients, as torchrun's workers join its agent's
store (``TORCHELASTIC_USE_AGENT_STORE``). Picking a free port and releasing it before the workers
bind it would leave a window for another process to take it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def join_group(rank: int, world: int, port: int) -> None:
    """Set the torchrun variables that make ``init_distributed`` join the held store as a client."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), TORCHELASTIC_USE_AGENT_STORE="True")
    torch.set_num_threads(1)


def spawn(worker: Callable[..., None], world: int, *args: Any) -> None:
    """Run ``worker(rank, world, port, *args)`` in ``world`` processes; re-raises a worker's failure."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    try:
        mp.spawn(worker, args=(world, store.port, *args), nprocs=world, join=True)
    finally:
        del store
