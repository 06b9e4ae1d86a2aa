"""Strategies: how the trained model is spread over devices (one device, DDP, FSDP2).

The engine's loop does not know which one runs: it asks its :class:`Strategy` to prepare and wrap
the model, for the ``no_sync`` context of an accumulation micro-batch, for gradient norms, to agree
on flags across ranks (a non-finite loss or gradient, a stop signal, early stopping), for the
optimizer state and the module a checkpoint holds, and to load a checkpoint back.

* :class:`SingleDevice`: one process; every agreement is local (no collective, one host read a step).
* :class:`DDP`: ``DistributedDataParallel`` over torchrun's processes; gradients all-reduced, flags
  agreed with one ``all_reduce(max)`` a step.
* :class:`FSDP2`: ``fully_shard`` (see :mod:`framework.training.fsdp`) of the task itself, filled
  from rank 0's weights; no rank holds the whole model, so its forward is a collective
  (``shards_model``) and checkpoints hold ``sharded/`` (DCP) instead of ``model.safetensors``.

:func:`make_strategy` picks one from ``trainer.distributed`` and the world size.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from framework.errors import FrameworkError
from framework.training import checkpoint as ckpt
from framework.training import distributed as dist_utils
from framework.training import fsdp
from framework.training.metric_logger import MetricWindow


@dataclass(frozen=True)
class StepFlags:
    """What every rank agreed on before an optimizer step.

    Attributes:
        bad: ``"loss"`` or ``"gradient"`` when that was non-finite on some rank, else ``None``.
        stop: Whether some rank was asked to stop (SIGTERM/SIGINT).
    """

    bad: Optional[str]
    stop: bool


class Strategy:
    """One device: the base every strategy builds on. Subclasses override what differs.

    Args:
        device: This process's device.
        rank: This process's rank.
        world_size: Number of processes.

    Attributes:
        task: The module the modality built (set by :meth:`prepare`); checkpoints hold its weights.
        trained: The module the optimizer updates: ``task`` itself (placed on the device, or
            sharded in place under FSDP2).
    """

    name = "single"
    shards_model = False  #: True when no rank holds the whole model (FSDP2): the model's forward is a collective

    def __init__(self, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        self.device, self.rank, self.world_size = device, rank, world_size
        self.task: Optional[nn.Module] = None
        self.trained: Optional[nn.Module] = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes checkpoints."""
        return self.rank == 0

    # --- the model -------------------------------------------------------------------------------

    def check_options(self, *, ema: bool, param_groups: bool) -> None:
        """Raise ``ValueError`` when an engine option is not available under this strategy."""

    def prepare(self, task: nn.Module, memory_format: torch.memory_format = torch.preserve_format) -> nn.Module:
        """Before the optimizer is built: place ``task`` and return the module to optimize."""
        self.task = self.trained = task.to(self.device, memory_format=memory_format)
        return self.trained

    def wrap(self, model: nn.Module) -> nn.Module:
        """After resume and ``torch.compile``: the module the loop calls."""
        return model

    def no_sync(self, model: nn.Module, last: bool) -> ContextManager[Any]:
        """The context of a micro-batch's backward; gradients sync only on the ``last`` of a group."""
        return contextlib.nullcontext()

    def release(self, model: nn.Module) -> nn.Module:
        """When training is over (:meth:`Engine.close`): ``model`` without a wrapper that holds the
        process group, so that nothing keeps the group alive once the run destroys it."""
        return model

    # --- gradients and agreement ---------------------------------------------------------------

    def grad_norm(self, params: Iterable[nn.Parameter]) -> Optional[torch.Tensor]:
        """The total 2-norm of ``params``' gradients as this rank holds it (``None`` without any);
        pass it to :meth:`full_norm` for the value over every rank."""
        grads = [p.grad for p in params if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads, foreach=True) if grads else None

    def full_norm(self, norm: torch.Tensor) -> torch.Tensor:
        """A norm from :meth:`grad_norm` as a plain tensor over the whole model."""
        return norm

    def agree(self, pending: MetricWindow, norm: Optional[torch.Tensor], stop: bool) -> StepFlags:
        """Before an optimizer step: is the accumulated ``loss`` in ``pending`` or the gradient
        ``norm`` non-finite on any rank, and was any rank asked to ``stop``?

        The one host read of an ordinary step: skipping a non-finite step needs the answer before
        ``optimizer.step``. One device: the loss and the norm are read together, no collective.
        """
        if norm is None:
            loss_ok = math.isfinite(pending.sum_value("loss"))
            return StepFlags(None if loss_ok else "loss", stop)
        if norm.device.type == "cpu":  # host scalars: two reads cost less than stacking them
            loss, grad = pending.sum_value("loss"), norm.item()
        else:  # one device-to-host copy for both
            loss, grad = torch.stack([pending.total("loss").to(norm.device).float(), norm.float()]).tolist()
        return StepFlags("loss" if not math.isfinite(loss) else "gradient" if not math.isfinite(grad) else None, stop)

    def any_rank(self, flag: bool) -> bool:
        """True when ``flag`` is true on some rank (every rank gets the same answer)."""
        return flag

    # --- checkpoints ---------------------------------------------------------------------------

    def non_finite_weights(self) -> list[str]:
        """Names of NaN/inf tensors in the trained weights, agreed over ranks (empty when all finite)."""
        bad = ckpt.non_finite_tensors(self._trained().state_dict())
        if self.any_rank(bool(bad)) and not bad:
            bad = ["a tensor shard on another rank"]
        return bad

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer state that goes into ``state.pt`` (a collective under none but FSDP2)."""
        return optimizer.state_dict()

    def checkpoint_module(self, optimizer: torch.optim.Optimizer,
                          staging: Path) -> tuple[Optional[nn.Module], dict[str, Path]]:
        """Every rank calls it at a checkpoint: the module rank 0 writes as ``model.safetensors``
        (``None``: no full weights), and finished directories (name -> path) to move into the
        checkpoint. ``staging`` is a free path for such a directory."""
        return self._trained(), {}

    def load(self, path: Path, optimizer: torch.optim.Optimizer, optimizer_state: dict[str, Any]) -> None:
        """Restore the weights and optimizer state of the verified checkpoint at ``path``."""
        ckpt.apply_weights(self._trained(), Path(path) / ckpt.WEIGHTS)
        optimizer.load_state_dict(optimizer_state)

    def load_weights(self, read: Callable[[], dict[str, torch.Tensor]], what: str) -> None:
        """Load the full weights ``read()`` returns into the trained module (``trainer.init_from``);
        ``what`` names the setting and its value in errors. Every rank calls it.

        Raises:
            FrameworkError: The weights do not fit the model (keys or shapes).
        """
        module = self._trained()
        weights = fsdp.with_tied_aliases(module, read())
        problem = _misfit(module, weights)
        if problem:
            raise _misfit_error(what, problem)
        module.load_state_dict(weights, strict=True)

    def _trained(self) -> nn.Module:
        if self.trained is None:
            raise RuntimeError("strategy.prepare(task) has not run yet")
        return self.trained


class SingleDevice(Strategy):
    """One process on one device (the base behaviour)."""


class _Collective(Strategy):
    """Agreement over a process group: every flag in one ``all_reduce(max)``."""

    @property
    def collective_device(self) -> torch.device:
        """Where flag tensors live for a collective: the GPU under NCCL, else the CPU (gloo)."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def agree(self, pending: MetricWindow, norm: Optional[torch.Tensor], stop: bool) -> StepFlags:
        """Every rank skips, and stops, at the same step."""
        device = self.collective_device
        flags = torch.zeros(3, device=device)  # (loss non-finite, gradient non-finite, stop asked)
        flags[0] = (~torch.isfinite(pending.total("loss").to(device))).float()
        if norm is not None:
            flags[1] = (~torch.isfinite(self.full_norm(norm).to(device))).float()
        flags[2] = float(stop)
        bad_loss, bad_grad, stop_any = dist_utils.all_reduce_max(flags).tolist()
        return StepFlags("loss" if bad_loss else "gradient" if bad_grad else None, bool(stop_any))

    def any_rank(self, flag: bool) -> bool:
        """One ``all_reduce(max)`` of the flag."""
        box = torch.tensor([float(flag)], device=self.collective_device)
        return bool(dist_utils.all_reduce_max(box).item())


class DDP(_Collective):
    """``DistributedDataParallel``: every rank holds the whole model; gradients are all-reduced."""

    name = "ddp"

    def wrap(self, model: nn.Module) -> nn.Module:
        """Wrap in DDP (after ``torch.compile``), which broadcasts rank 0's weights."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def release(self, model: nn.Module) -> nn.Module:
        """The module inside DDP: the wrapper's reducer holds the process group."""
        return model.module if isinstance(model, DistributedDataParallel) else model

    def no_sync(self, model: nn.Module, last: bool) -> ContextManager[Any]:
        """DDP's ``no_sync`` on all but the last micro-batch: one all-reduce per optimizer step."""
        if last or not isinstance(model, DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()


class FSDP2(_Collective):
    """``fully_shard`` of the task itself (see :mod:`framework.training.fsdp`): no rank keeps a whole
    copy; rank 0's weights fill every rank's shards; checkpoints are sharded (DCP) only.

    Args:
        plan: Mixed precision, CPU offload, activation checkpointing (from ``trainer.fsdp``).
    """

    name = "fsdp"
    shards_model = True

    def __init__(self, device: torch.device, rank: int = 0, world_size: int = 1,
                 plan: Optional[fsdp.ShardPlan] = None) -> None:
        super().__init__(device, rank, world_size)
        self.plan = plan or fsdp.ShardPlan()

    def check_options(self, *, ema: bool, param_groups: bool) -> None:
        """EMA and custom parameter groups need the whole model on every rank: refused."""
        if ema or param_groups:
            raise ValueError("trainer.distributed=fsdp supports neither trainer.ema_decay nor custom param_groups")

    def prepare(self, task: nn.Module, memory_format: torch.memory_format = torch.preserve_format) -> nn.Module:
        """Shard ``task`` in place and fill every rank's shards with rank 0's weights; on the other
        ranks ``task`` may have been built on the meta device. Rank 0's full tensors are let go."""
        full = task.state_dict() if self.is_main else {}
        self.task = self.trained = fsdp.shard(task, self.plan)
        fsdp.fill_from_rank0(task, full, self._shard_device, is_main=self.is_main)
        return self.trained

    @property
    def _shard_device(self) -> torch.device:
        """Where each rank's shards live: the CPU under ``trainer.fsdp.cpu_offload``, else the device."""
        return torch.device("cpu") if self.plan.cpu_offload else self.device

    def full_norm(self, norm: torch.Tensor) -> torch.Tensor:
        """The norm is a DTensor over the ranks' shards: its full value (a collective)."""
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Empty: the sharded optimizer state lives in the checkpoint's ``sharded/`` (DCP)."""
        return {}

    def checkpoint_module(self, optimizer: torch.optim.Optimizer,
                          staging: Path) -> tuple[Optional[nn.Module], dict[str, Path]]:
        """Every rank writes its shard into ``staging``; no full weights are gathered (``None``)."""
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
        dist_utils.barrier()
        fsdp.save_sharded(self._trained(), optimizer, staging)
        return None, ({fsdp.SHARDED: staging} if self.is_main else {})

    def load(self, path: Path, optimizer: torch.optim.Optimizer, optimizer_state: dict[str, Any]) -> None:
        """Read every rank's shard (resharding to this world size)."""
        sharded = Path(path) / fsdp.SHARDED
        if not sharded.is_dir():
            raise ValueError(f"{path} has no {fsdp.SHARDED}/ (it was not written under trainer.distributed=fsdp); "
                             "resume it with trainer.distributed=ddp, or start with trainer.resume=never")
        fsdp.load_sharded(self._trained(), optimizer, sharded)

    def load_weights(self, read: Callable[[], dict[str, torch.Tensor]], what: str) -> None:
        """Rank 0 reads the full weights and every rank receives its shards; weights that do not
        fit raise one ``FrameworkError`` on every rank."""
        full: dict[str, torch.Tensor] = {}
        problem: str | BaseException | None = None
        if self.is_main:
            try:
                full = fsdp.with_tied_aliases(self._trained(), read())
                problem = _misfit(self._trained(), full)
            except Exception as err:  # noqa: BLE001 - raised on every rank below, not only here
                problem = err
        problem = dist_utils.broadcast_object(problem)
        if isinstance(problem, BaseException):
            raise problem
        if problem:
            raise _misfit_error(what, problem)
        fsdp.fill_from_rank0(self._trained(), full, self._shard_device, is_main=self.is_main)


def _misfit_error(what: str, problem: str) -> FrameworkError:
    """One line naming ``what``, the mismatch and the fix."""
    return FrameworkError(f"{what}: its weights do not fit this model ({problem}); was it trained with another "
                          "model config? Use the model config it was trained with, or other weights")


def _misfit(model: nn.Module, weights: dict[str, torch.Tensor]) -> str:
    """Why ``weights`` cannot load into ``model`` (missing or unexpected keys, other shapes); ``""`` if they can."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [f"{k}: {tuple(weights[k].shape)} vs {expected[k]}" for k in sorted(set(weights) & set(expected))
              if tuple(weights[k].shape) != expected[k]]
    parts = [f"missing {', '.join(missing[:3])}" if missing else "",
             f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
             f"other shapes {', '.join(shapes[:3])}" if shapes else ""]
    return "; ".join(p for p in parts if p)


def make_strategy(distributed: str, device: torch.device, rank: int, world_size: int,
                  plan: Optional[fsdp.ShardPlan] = None) -> Strategy:
    """The strategy for ``trainer.distributed`` (``ddp`` or ``fsdp``) with ``world_size`` processes;
    one process is always :class:`SingleDevice`. ``plan`` configures FSDP2."""
    if distributed not in ("ddp", "fsdp"):
        raise ValueError(f"trainer.distributed={distributed!r} is unknown; use ddp or fsdp")
    if world_size == 1:
        return SingleDevice(device, rank, world_size)
    if distributed == "fsdp":
        return FSDP2(device, rank, world_size, plan)
    return DDP(device, rank, world_size)
