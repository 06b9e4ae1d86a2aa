"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for the engine: sharding and sharded checkpoints.

Selected with ``trainer.distributed=fsdp`` under torchrun (more than one process). The engine
shards a copy of the task: each unit the task names in ``fsdp_units()`` (its transformer blocks,
say) is sharded on its own, then the task as a whole, so parameters, gradients and optimizer state
are split across ranks and gathered one unit at a time. The task object the modality built stays
unsharded (its weights are not updated during training) and receives the trained weights on rank 0
at every checkpoint, so evaluation and export, which run on rank 0 alone, need no collective.

Checkpoints keep the core layout (``model.safetensors`` with the full weights, ``state.pt``,
``config.yaml``, ``manifest.json``) and add ``sharded/``: every rank's shard of the weights and the
optimizer state, written and read with ``torch.distributed.checkpoint`` (DCP). Resume reads
``sharded/`` and reshards when the world size changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

SHARDED = "sharded"  # the DCP directory inside a checkpoint


def shard(task: nn.Module) -> nn.Module:
    """Apply ``fully_shard`` to each of ``task.fsdp_units()`` (when defined), then to ``task``."""
    from torch.distributed.fsdp import fully_shard

    units_of = getattr(task, "fsdp_units", None)
    for unit in (units_of() if callable(units_of) else []):
        fully_shard(unit)
    fully_shard(task)
    return task


def _options(**kwargs: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(**kwargs)


def full_weights(model: nn.Module) -> dict[str, Any]:
    """The full (unsharded) state dict on rank 0's CPU, empty on the other ranks. A collective:
    every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options(full_state_dict=True, cpu_offload=True))


def save_sharded(model: nn.Module, optimizer: Any, directory: Path) -> None:
    """Every rank writes its shard of the weights and optimizer state into ``directory`` (DCP)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(directory))


def load_sharded(model: nn.Module, optimizer: Any, directory: Path) -> None:
    """Every rank reads its shard of the weights and optimizer state from ``directory`` (DCP)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(directory))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
