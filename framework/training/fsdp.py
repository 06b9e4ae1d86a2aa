"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for the engine: sharding, filling shards, sharded checkpoints.

Selected with ``trainer.distributed=fsdp`` under torchrun (more than one process). The task is
sharded in place: each unit the task names in ``fsdp_units()`` (its transformer blocks, say) is
sharded on its own, then the task as a whole, so parameters, gradients and optimizer state are
split across ranks and gathered one unit at a time. No rank keeps an unsharded copy.

Only rank 0 needs real weights before sharding: the other ranks may build the task on the meta
device (:func:`framework.modality.Modality.build_task` with ``ctx.meta_device``), which costs no
memory. :func:`fill_from_rank0` then gives every rank its shards of rank 0's weights
(``set_model_state_dict(..., broadcast_from_rank0=True)``), and rank 0's full tensors are freed.

Checkpoints keep the core layout (``state.pt``, ``config.yaml``, ``manifest.json``) with the weights
and optimizer state in ``sharded/``: every rank's shard, written and read with
``torch.distributed.checkpoint`` (DCP), without gathering the full model anywhere. Resume reads
``sharded/`` and reshards when the world size changed; :func:`read_full_weights` reads the full
weights back in one process (to evaluate or export a checkpoint, or to fine-tune from it).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import nn

from framework.training.config import FSDPConfig

SHARDED = "sharded"  # the DCP directory inside a checkpoint
_MODEL = "model"  # the DCP key prefix of the weights ("optim" holds the optimizer state)
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}  # trainer.fsdp.*_dtype


@dataclass(frozen=True)
class ShardPlan:
    """What :func:`shard` applies, resolved from ``trainer.fsdp`` (:class:`FSDPConfig`) and the run's precision."""

    param_dtype: Optional[torch.dtype] = None
    reduce_dtype: Optional[torch.dtype] = None
    cpu_offload: bool = False
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True

    @classmethod
    def from_config(cls, cfg: FSDPConfig, precision: str) -> "ShardPlan":
        """``precision`` is the resolved ``trainer.precision`` (``fp32``, ``bf16`` or ``fp16``)."""
        if cfg.param_dtype == "auto":
            param = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        else:
            param = DTYPES[cfg.param_dtype]
        reduce = DTYPES[cfg.reduce_dtype] if cfg.reduce_dtype else None
        return cls(param, reduce, cfg.cpu_offload, cfg.activation_checkpointing, cfg.reshard_after_forward)


def units_of(task: nn.Module) -> list[nn.Module]:
    """The modules ``task.fsdp_units()`` names (each sharded on its own), or none."""
    method = getattr(task, "fsdp_units", None)
    return list(method()) if callable(method) else []


def shard(task: nn.Module, plan: ShardPlan = ShardPlan()) -> nn.Module:
    """Shard ``task`` in place: ``fully_shard`` each of ``task.fsdp_units()`` (wrapped for
    activation checkpointing first when the plan says so), then ``task`` itself. Returns ``task``.

    Meta-device parameters stay on the meta device (see :func:`fill_from_rank0`); real ones are
    split, and each rank keeps its shard on its device (on the CPU with ``cpu_offload``).
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    units = units_of(task)
    if plan.activation_checkpointing and units:
        units = _checkpoint_units(task, units)
    options: dict[str, Any] = {
        "mp_policy": MixedPrecisionPolicy(param_dtype=plan.param_dtype, reduce_dtype=plan.reduce_dtype),
        # Pinned host memory speeds up copies to a GPU; without CUDA there is nothing to pin for.
        "offload_policy": CPUOffloadPolicy(pin_memory=torch.cuda.is_available()) if plan.cpu_offload else OffloadPolicy(),
    }
    for unit in units:
        fully_shard(unit, reshard_after_forward=plan.reshard_after_forward, **options)
    fully_shard(task, **options)  # the root: what no unit holds (embeddings, heads); kept gathered for its forward
    return task


def _checkpoint_units(task: nn.Module, units: list[nn.Module]) -> list[nn.Module]:
    """Wrap each unit in ``checkpoint_wrapper`` where it sits in ``task``; return the wrappers.

    The wrapper's ``_checkpoint_wrapped_module.`` prefix is dropped from state-dict keys by torch,
    so checkpoints keep the task's own names.
    """
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    wanted = {id(unit) for unit in units}
    wrapped = []
    for parent in list(task.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in wanted:
                wrapper = checkpoint_wrapper(child)
                parent.register_module(name, wrapper)
                wrapped.append(wrapper)
    return wrapped


def fill_from_rank0(task: nn.Module, full: dict[str, torch.Tensor], device: torch.device, *,
                    is_main: bool) -> None:
    """Give every rank its shards of rank 0's weights; a collective.

    Args:
        task: Sharded by :func:`shard`; on ranks other than 0 its tensors may be on the meta device.
        full: Rank 0's full state dict (its real weights, on any device); ignored elsewhere.
        device: Where meta tensors are allocated (the CPU under ``cpu_offload``).
        is_main: True on rank 0.

    Buffers are not sharded: every rank receives rank 0's, including the non-persistent ones a
    state dict leaves out (rotary frequencies), which a meta-device build has no values for.
    """
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if any(t.is_meta for t in _tensors(task)):
        task.to_empty(device=device)  # allocates each rank's shards; FSDP keeps tied parameters tied
    for buffer in task.buffers():
        dist.broadcast(buffer.data, src=0)
    set_model_state_dict(task, full if is_main else {},
                         options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def _tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def full_weights(model: nn.Module) -> dict[str, Any]:
    """The full (unsharded) state dict on rank 0's CPU, empty on the other ranks. A collective:
    every rank calls it. The one place full weights are gathered (for the export)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {name: _own_storage(value) for name, value in full.items()}


def _own_storage(tensor: Any) -> Any:
    """``tensor`` with a storage of its own: a gathered tensor can be a view of a padded buffer,
    which safetensors refuses to save."""
    if isinstance(tensor, torch.Tensor) and tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def unsharded_copy(template: nn.Module, sharded: nn.Module, full: dict[str, torch.Tensor]) -> nn.Module:
    """``template`` (a freshly built task, on the meta device or not) holding ``full`` on the CPU,
    with ``sharded``'s buffers; for rank 0's stages that need the whole model (export).

    Tied parameters stay tied; non-persistent buffers come from ``sharded`` (every rank holds them whole).
    """
    tied = _tied_groups(template)
    template.load_state_dict(full, strict=True, assign=True)
    for names in tied:
        kept = template.get_parameter(names[0])
        for name in names[1:]:
            owner, _, leaf = name.rpartition(".")
            setattr(template.get_submodule(owner), leaf, kept)
    for name, buffer in sharded.named_buffers():
        owner, _, leaf = name.rpartition(".")
        template.get_submodule(owner)._buffers[leaf] = buffer.detach().to("cpu", copy=True)
    return template


def with_tied_aliases(model: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` with every name of a tied parameter present (safetensors files keep one name of
    tied tensors, a state dict lists every name)."""
    out = dict(weights)
    for names in _tied_groups(model):
        present = next((name for name in names if name in out), None)
        if present is not None:
            out.update({name: out[present] for name in names if name not in out})
    return out


def _tied_groups(module: nn.Module) -> list[list[str]]:
    """Names of parameters that are one tensor (tied embeddings), one list per tensor shared by several."""
    by_id: dict[int, list[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(param), []).append(name)
    return [names for names in by_id.values() if len(names) > 1]


@contextmanager
def root_gathered(task: nn.Module) -> Iterator[nn.Module]:
    """Within: the root's own parameters (embeddings, heads: what no unit holds) are gathered, so
    code that calls a submodule rather than ``task(...)`` (``task.model.generate``) computes with
    whole tensors; each unit still gathers its own around its forward. A collective on entry."""
    unshard = getattr(task, "unshard", None)
    if not callable(unshard):
        yield task
        return
    unshard()
    try:
        yield task
    finally:
        task.reshard()  # type: ignore[operator]


def save_sharded(model: nn.Module, optimizer: Any, directory: Path) -> None:
    """Every rank writes its shard of the weights and optimizer state into ``directory`` (DCP)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({_MODEL: model_state, "optim": optim_state}, checkpoint_id=str(directory))


def load_sharded(model: nn.Module, optimizer: Any, directory: Path) -> None:
    """Every rank reads its shard of the weights and optimizer state from ``directory`` (DCP),
    resharded to this world size."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {_MODEL: model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(directory))
    set_state_dict(model, optimizer, model_state_dict=state[_MODEL], optim_state_dict=state["optim"])


def read_full_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The full weights of a ``sharded/`` directory, read in this process alone onto the CPU
    (whatever world size wrote it): the tensors' names and shapes come from DCP's metadata."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    metadata = dcp.FileSystemReader(str(directory)).read_metadata()
    prefix = f"{_MODEL}."
    state = {key: torch.empty(meta.size, dtype=meta.properties.dtype)
             for key, meta in metadata.state_dict_metadata.items()
             if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=str(directory), no_dist=True)
    return {key[len(prefix):]: value for key, value in state.items()}
