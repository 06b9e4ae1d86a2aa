"""The training engine: everything around a modality's forward/loss/backward.

A modality's loop reads top to bottom::

    with Engine(cfg.trainer, run, events, seed=cfg.seed) as engine:
        model = engine.setup(task)
        loader = engine.dataloader(train_set)
        for batch in engine.steps(loader, validate=lambda: {"val_loss": val_loss(model)}):
            with engine.autocast():
                out = model(batch)              # a dict with "loss" and loggable parts
            engine.backward(out["loss"], out)

The engine owns device, precision, accumulation, clipping, schedule, EMA, checkpoints and resume,
signals, logging and DDP. :meth:`Engine.steps` yields micro-batches; :meth:`Engine.backward`
takes the optimizer step on each accumulation boundary; between two yields the engine does its
bookkeeping (logging, validation, checkpoints, signal checks) on step boundaries only.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping, Optional, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from framework.errors import FrameworkError, first_line
from framework.hookspecs import RunInfo
from framework.training import checkpoint as ckpt
from framework.training import distributed as dist_utils
from framework.training import fsdp
from framework.training.config import RESUME_MAY_CHANGE, TrainerConfig, validate_trainer
from framework.training.data import ResumableSampler, SeededDataset, dataset_length
from framework.training.device import autocast, batch_size_of, move_to_device, resolve_device, resolve_precision
from framework.training.ema import ModelEMA
from framework.training.monitor import EarlyStopper, MetricsFile, MetricWindow, OverfitWatch
from framework.training.schedule import Schedule
from framework.training.seed import get_rng_states, seed_everything, set_deterministic, set_rng_states
from framework.training.signals import StopSignal

log = logging.getLogger(__name__)

Validate = Callable[[], Mapping[str, float]]


class TrainingStopped(RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses in a row); the message says why."""


class ResumeRefused(FrameworkError):
    """Resuming would mix two runs (a changed config) or lose work (every checkpoint unusable)."""


class Interrupted(Exception):
    """A SIGTERM/SIGINT stopped training after a checkpoint was saved.

    Attributes:
        checkpoint: The checkpoint written at the stopping step.
        step: The optimizer step training stopped at.
    """

    def __init__(self, checkpoint: Path, step: int) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")
        self.checkpoint, self.step = checkpoint, step


class EngineEvents(Protocol):
    """What the engine reports, on the main process only. The plugin facade forwards to hooks."""

    def step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        """Every ``log_every`` optimizer steps, with averaged train metrics, lr, grad_norm, items_per_s."""

    def evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """After each validation during training (``split="val"``), with ``train_loss`` beside it."""

    def checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        """After a checkpoint is completely written and valid."""


@dataclass
class TrainState:
    """The engine's counters; all of it goes into ``state.pt``.

    Attributes:
        step: Optimizer steps taken.
        epoch: Current epoch (0-based).
        batches_in_epoch: Micro-batches of the current epoch already consumed on this rank.
        bad_steps_total: Optimizer steps skipped for a non-finite loss, over the run.
        bad_steps_in_row: Such skips since the last good step.
    """

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    bad_steps_total: int = 0
    bad_steps_in_row: int = 0


class Engine:
    """Runs a modality's training loop. See the module docstring for the loop it expects.

    Args:
        cfg: The ``trainer:`` config.
        run: The run's identity; ``run.run_dir`` receives ``metrics.jsonl`` and ``checkpoints/``.
        events: Receiver of step/evaluated/checkpoint events (main process only); optional.
        seed: Base seed of initialisation-time RNGs, data order and augmentation.
    """

    def __init__(self, cfg: TrainerConfig, run: RunInfo, events: EngineEvents | None = None, seed: int = 0) -> None:
        validate_trainer(cfg, check_paths=False)  # one line naming every bad value; a ValueError too
        self.cfg, self.run, self.events, self.seed = cfg, run, events, seed
        self.rank, self.world_size, self.local_rank = dist_utils.init_distributed()
        self.device = resolve_device(cfg.device, self.local_rank)
        self.precision = resolve_precision(cfg.precision, self.device)
        if cfg.distributed not in ("ddp", "fsdp"):
            raise ValueError(f"trainer.distributed={cfg.distributed!r} is unknown; use ddp or fsdp")
        self.fsdp = cfg.distributed == "fsdp" and self.world_size > 1
        self._unsharded: nn.Module | None = None  # under FSDP: the task the modality built
        self.state = TrainState()
        self.task: nn.Module | None = None
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.ema: ModelEMA | None = None
        self.schedule: Schedule | None = None
        self.total_steps: int | None = None
        self._params: list[nn.Parameter] = []
        self._base_lrs: list[float] = []
        self._signal = StopSignal()
        self._metrics_file = MetricsFile(Path(run.run_dir) / "metrics.jsonl") if self.is_main else None
        self._pending, self._window, self._since_eval = MetricWindow(), MetricWindow(), MetricWindow()
        self._overfit = OverfitWatch()
        es = cfg.early_stopping
        self._early = EarlyStopper(es.metric, es.mode, es.patience, es.min_delta)
        self._micro, self._accum_target, self._per_epoch = 0, cfg.accumulate, 0
        self._boundary = self._stepped = self._stop_agreed = False
        self._stop_reason: str | None = None
        self._last_saved_step = -1
        self._last_path: Path | None = None
        self._last_finite: MetricWindow | None = None
        self._batch_items = self._items = self._tokens = 0
        self._log_time = time.perf_counter()
        self._lr = cfg.lr
        self._bar: Any = None

    # --- properties and small helpers --------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0

    def autocast(self) -> ContextManager[Any]:
        """Autocast for the run's precision (bf16/fp16); a null context in fp32."""
        return autocast(self.precision, self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """``model`` without its DDP and ``torch.compile`` wrappers."""
        return ckpt.unwrap_module(model)

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The module to evaluate: the EMA copy when ``ema_decay`` is set, else the unwrapped model."""
        return self.ema.module if self.ema is not None else self.unwrap(model)

    def close(self) -> None:
        """Restore the signal handlers that were there before :meth:`setup`; close the progress bar."""
        self._signal.restore()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- setup -------------------------------------------------------------------------------

    def setup(self, task: nn.Module, *, param_groups: Optional[list[dict[str, Any]]] = None,
              channels_last: bool = False) -> nn.Module:
        """Prepare ``task`` for training and return the module to call in the loop.

        Seeds (``seed + rank``), moves to the device, builds AdamW (weight decay only on
        parameters with ``ndim >= 2``) unless ``param_groups`` are given, the fp16 GradScaler and
        the EMA copy, restores a checkpoint per ``cfg.resume``, then compiles and wraps in DDP as
        configured. Installs the SIGTERM/SIGINT handlers (undone by :meth:`close`).

        With ``trainer.distributed=fsdp`` under torchrun, a copy of ``task`` is sharded with FSDP2
        instead (see :mod:`framework.training.fsdp`; ``task.fsdp_units()`` names the blocks to
        shard one by one) and trained; ``task`` itself stays unsharded and receives the trained
        weights on rank 0 at each checkpoint. EMA and ``param_groups`` are not available then.

        Args:
            task: The model with its loss; its ``state_dict`` is what checkpoints hold.
            param_groups: Optimizer parameter groups (each may carry its own ``lr``), instead of
                the default decay/no-decay split.
            channels_last: Use the channels-last memory format (faster convolutions on GPUs).
        """
        if self.cfg.deterministic:
            set_deterministic(True)
        seed_everything(self.seed + self.rank)
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        if self.fsdp:
            if self.cfg.ema_decay or param_groups is not None:
                raise ValueError("trainer.distributed=fsdp supports neither trainer.ema_decay nor custom param_groups")
            self._unsharded = task
            # fully_shard moves each rank's shards to the device; the unsharded task stays put.
            self.task = fsdp.shard(copy.deepcopy(task))
        else:
            self.task = task.to(self.device, memory_format=memory_format)
        self.optimizer = self._build_optimizer(self.task, param_groups)
        self._base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.precision == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type)
        if self.cfg.ema_decay:
            self.ema = ModelEMA(task, self.cfg.ema_decay)
        if self.is_main:
            ckpt.remove_partial_writes(self.run.run_dir)
        self._maybe_resume()
        model: nn.Module = self.task
        if self.cfg.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        if self.world_size > 1 and not self.fsdp:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=device_ids)
        self.model = model
        self._signal.install()
        return model

    def _build_optimizer(self, task: nn.Module, param_groups: Optional[list[dict[str, Any]]]) -> torch.optim.Optimizer:
        betas = (float(self.cfg.betas[0]), float(self.cfg.betas[1]))
        if param_groups is None:
            params = [p for p in task.parameters() if p.requires_grad]
            # Biases and norm scales (ndim < 2) are not decayed: decay would pull them to zero.
            param_groups = [
                {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
            ]
            param_groups = [g for g in param_groups if g["params"]]
        # The fused kernel (CUDA, and CPU since torch 2.4) updates every tensor in one pass: on a
        # CPU it is several times faster than the per-tensor loop that is AdamW's default there.
        fused = self.device.type in ("cuda", "cpu")
        return torch.optim.AdamW(param_groups, lr=self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay,
                                 fused=fused or None)

    # --- data --------------------------------------------------------------------------------

    def dataloader(self, dataset: Dataset, *, batch_size: Optional[int] = None, shuffle: bool = True,
                   collate_fn: Optional[Callable[[list[Any]], Any]] = None, drop_last: bool = False) -> DataLoader:
        """A DataLoader with a seeded, resumable, rank-sharded order and seeded fetches.

        Args:
            dataset: A map-style dataset (``__len__`` and ``__getitem__``). If it has
                ``reseed(seed)``, that is called before each batch with the batch's seed
                (a function of the seed, the epoch and the batch's indices).
            batch_size: Micro-batch size per rank; ``None`` means ``cfg.batch_size``.
            shuffle: Permute the order each epoch (seeded by ``(seed, epoch)``).
            collate_fn: As for ``DataLoader``.
            drop_last: Drop the incomplete last batch (and the uneven tail across ranks).
        """
        sampler = ResumableSampler(dataset_length(dataset), self.seed, shuffle, self.rank, self.world_size, drop_last)
        return DataLoader(
            SeededDataset(dataset, self.seed),
            batch_size=batch_size or self.cfg.batch_size,
            sampler=sampler,
            collate_fn=collate_fn,
            drop_last=drop_last,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            # Its own generator, so creating an iterator never draws from the global torch RNG
            # (which would make a resumed run's dropout differ from an uninterrupted one).
            generator=torch.Generator().manual_seed(self.seed),
        )

    # --- the step loop -----------------------------------------------------------------------

    def steps(self, loader: Iterable[Any], validate: Optional[Validate] = None) -> Iterator[Any]:
        """Yield micro-batches on the device until the step budget is spent or training stops.

        The budget is ``cfg.max_steps`` when positive, else ``cfg.epochs * ceil(batches / accumulate)``.
        Call :meth:`backward` once per yielded micro-batch. ``validate()`` runs every
        ``cfg.eval_every`` steps (0: at each epoch end) under ``eval()`` and ``no_grad``.

        Raises:
            Interrupted: After a SIGTERM/SIGINT, once the checkpoint at the stopping step is saved.
            TrainingStopped: From :meth:`backward`, after too many non-finite losses in a row.
        """
        self._require_setup()
        self._per_epoch = self._batches_per_epoch(loader)
        per_step = math.ceil(self._per_epoch / self.cfg.accumulate)
        total = self.cfg.max_steps if self.cfg.max_steps > 0 else self.cfg.epochs * per_step
        self.total_steps = total
        self.schedule = Schedule.from_ratio(total, self.cfg.warmup_ratio, self.cfg.schedule, self.cfg.min_lr_ratio)
        self._open_bar(total)
        self._log_time, self._items, self._tokens = time.perf_counter(), 0, 0
        try:
            while self.state.step < total and self._stop_reason is None:
                for batch in self._epoch_batches(loader):
                    yield batch
                    if self._boundary and self._after_boundary(validate, total):
                        break
                else:
                    if self.state.batches_in_epoch:  # the loop did not end on a step boundary
                        self._end_epoch(validate)
            self._finish()
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _batches_per_epoch(self, loader: Iterable[Any]) -> int:
        sampler = getattr(loader, "sampler", None)
        batch_size = getattr(loader, "batch_size", None)
        if isinstance(sampler, ResumableSampler) and batch_size:
            rounding = math.floor if getattr(loader, "drop_last", False) else math.ceil
            return int(rounding(sampler.num_samples / batch_size))
        try:
            return len(loader)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("engine.steps needs a loader with a length (a DataLoader or a list of batches)") from None

    def _epoch_batches(self, loader: Iterable[Any]) -> Iterator[Any]:
        """The rest of the current epoch's micro-batches, setting each one's accumulation group size."""
        sampler, batch_size = getattr(loader, "sampler", None), getattr(loader, "batch_size", None)
        consumed = self.state.batches_in_epoch
        if isinstance(sampler, ResumableSampler) and batch_size:
            sampler.resume_from(self.state.epoch, consumed * batch_size)  # skips without fetching
            batches: Iterator[Any] = iter(loader)
        else:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.state.epoch)  # type: ignore[union-attr]
            batches = itertools.islice(iter(loader), consumed, None)
        acc = self.cfg.accumulate
        for batch in batches:
            index = self.state.batches_in_epoch
            # The epoch's last group may be short: it still ends in an optimizer step.
            self._accum_target = min(acc, self._per_epoch - (index - index % acc))
            self.state.batches_in_epoch += 1
            self._batch_items = batch_size_of(batch)
            yield move_to_device(batch, self.device, non_blocking=self.device.type == "cuda")

    def _after_boundary(self, validate: Optional[Validate], total: int) -> bool:
        """Bookkeeping after an accumulation boundary; True when the loop must stop."""
        self._boundary = False
        if self._stepped:
            if self._bar is not None:
                self._bar.update(1)
            if self.state.step % max(1, self.cfg.log_every) == 0:
                self._log_train()
            if validate is not None and self.cfg.eval_every > 0 and self.state.step % self.cfg.eval_every == 0:
                self._validate(validate)
        if self.state.batches_in_epoch >= self._per_epoch:
            self._end_epoch(validate)
        done = self.state.step >= total or self._stop_reason is not None
        every = self.cfg.checkpoint_every
        if self._stepped and every > 0 and self.state.step % every == 0 and not done:
            self.save_checkpoint()
        if self._stop_agreed and not done:
            self._interrupt()
        return done

    def _end_epoch(self, validate: Optional[Validate]) -> None:
        self.state.epoch += 1
        self.state.batches_in_epoch = 0
        if validate is not None and self.cfg.eval_every == 0:
            self._validate(validate)

    def _interrupt(self) -> None:
        saved = self._last_saved_step == self.state.step and self._last_path is not None
        path = self._last_path if saved else self.save_checkpoint()
        log.warning("Stopped by a signal at step %d; resume from %s", self.state.step, path)
        raise Interrupted(path, self.state.step)

    def _finish(self) -> None:
        if self._window and self.state.step % max(1, self.cfg.log_every):
            self._log_train()
        if self._last_saved_step != self.state.step:
            self.save_checkpoint()
        if self._unsharded is not None and self.is_main:
            self._unsharded.to(self.device)  # holds the final weights (the last checkpoint loaded them)
        if self.ema is not None:
            # The averaged weights are the model to evaluate and export; the checkpoint just written
            # keeps the raw weights too, for resuming.
            self.task.load_state_dict(self.ema.module.state_dict())  # type: ignore[union-attr]
            log.info("Training done: the task now holds the EMA weights (trainer.ema_decay=%s)", self.cfg.ema_decay)
        if self._stop_reason:
            log.info("Training stopped at step %d: %s", self.state.step, self._stop_reason)

    # --- backward and the optimizer step -----------------------------------------------------

    def backward(self, loss: torch.Tensor, metrics: Optional[Mapping[str, Any]] = None) -> bool:
        """Backpropagate one micro-batch's loss; take the optimizer step on an accumulation boundary.

        Args:
            loss: The micro-batch's mean loss (a scalar tensor).
            metrics: Scalars to average for logging (tensors or floats), e.g. the task's output dict;
                non-scalar entries are ignored, and ``loss`` is always logged from ``loss``. A
                ``tokens`` entry (a Python int: tokens in the micro-batch) is summed instead and
                logged as ``tokens_per_s``.

        Returns:
            True when an optimizer step happened (a skipped non-finite step returns False).

        Raises:
            TrainingStopped: After ``cfg.max_bad_steps`` non-finite losses in a row.
        """
        self._require_setup()
        self._micro += 1
        final = self._micro >= self._accum_target
        scaled = loss / self._accum_target if self._accum_target > 1 else loss
        if self.scaler is not None:
            scaled = self.scaler.scale(scaled)
        no_sync = isinstance(self.model, DistributedDataParallel) and not final
        with self.model.no_sync() if no_sync else contextlib.nullcontext():  # type: ignore[union-attr, operator]
            scaled.backward()
        extra = {k: v for k, v in (metrics or {}).items() if k != "loss"}
        tokens = extra.pop("tokens", None)
        if isinstance(tokens, (int, float)):  # a plain count: no host sync
            self._tokens += tokens
        self._pending.add({"loss": loss, **extra})
        self._items += self._batch_items
        if not final:
            return False
        self._micro, self._accum_target = 0, self.cfg.accumulate
        return self._optimizer_step()

    def _optimizer_step(self) -> bool:
        self._boundary = True
        # fp16: the GradScaler skips steps with inf/NaN gradients itself (and lowers its scale), so
        # only the loss is checked here; otherwise the gradient norm is checked with the loss.
        norm = self._grad_norm() if self.scaler is None else None
        bad = self._agree_on_flags(norm)
        if bad:
            self._skip_step(bad)
            return False
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # type: ignore[arg-type]
            norm = self._grad_norm()
        self._clip_and_record_norm(norm)
        self._lr = self._set_lr()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # type: ignore[arg-type]
            self.scaler.update()
        else:
            self.optimizer.step()  # type: ignore[union-attr]
        self.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
        if self.ema is not None:
            self.ema.update(self.task)  # type: ignore[arg-type]
        self._last_finite = self._pending  # averaged only if a later failure reports it
        self._window.merge(self._pending)
        self._since_eval.merge(self._pending)
        self._pending = MetricWindow()
        self.state.step += 1
        self.state.bad_steps_in_row = 0
        self._stepped = True
        return True

    def _agree_on_flags(self, norm: torch.Tensor | None = None) -> str | None:
        """What is non-finite this step on any rank (``"loss"``, ``"gradient"`` or ``None``); also
        agrees on the stop signal.

        This is the one host sync of an ordinary step: skipping a non-finite step needs the
        answer before ``optimizer.step``. The loss and the gradient norm are read together; under
        DDP every flag travels in one all_reduce(max), so every rank skips, and stops, at the same step.
        """
        if self.world_size == 1:
            self._stop_agreed = self._signal.requested
            if norm is None:
                return None if math.isfinite(self._pending.sum_value("loss")) else "loss"
            if norm.device.type == "cpu":  # host scalars: two reads cost less than stacking them
                loss, grad = self._pending.sum_value("loss"), norm.item()
            else:  # one device-to-host copy for both
                loss, grad = torch.stack([self._pending.total("loss").to(norm.device).float(), norm.float()]).tolist()
            return "loss" if not math.isfinite(loss) else "gradient" if not math.isfinite(grad) else None
        loss_sum = self._pending.total("loss")
        flag_device = self.device if self.device.type == "cuda" else torch.device("cpu")
        flags = torch.zeros(3, device=flag_device)
        flags[0] = (~torch.isfinite(loss_sum.to(flag_device))).float()
        if norm is not None:
            if hasattr(norm, "full_tensor"):  # FSDP: the norm is a DTensor over the ranks' shards
                norm = norm.full_tensor()
            flags[1] = (~torch.isfinite(norm.to(flag_device))).float()
        flags[2] = float(self._signal.requested)
        bad_loss, bad_grad, stop = dist_utils.all_reduce_max(flags).tolist()
        self._stop_agreed = bool(stop)
        return "loss" if bad_loss else "gradient" if bad_grad else None

    def _skip_step(self, what: str = "loss") -> None:
        self.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
        self._pending.clear()
        self._stepped = False
        self.state.bad_steps_total += 1
        self.state.bad_steps_in_row += 1
        detail = "loss" if what == "loss" else "gradient norm (the loss was finite)"
        log.warning("Non-finite %s at step %d: optimizer step skipped (%d in a row, %d in total)",
                    detail, self.state.step, self.state.bad_steps_in_row, self.state.bad_steps_total)
        if self.state.bad_steps_in_row >= self.cfg.max_bad_steps:
            last = "none yet" if self._last_finite is None else f"{float(self._last_finite.mean_tensor('loss')):.6g}"
            raise TrainingStopped(
                f"Training stopped at step {self.state.step}: {self.state.bad_steps_in_row} non-finite "
                f"{'losses' if what == 'loss' else 'gradients'} in a row "
                f"(trainer.max_bad_steps={self.cfg.max_bad_steps}); last finite loss: {last}. "
                "Try a lower trainer.lr, trainer.precision=fp32, a tighter trainer.clip_grad_norm, "
                "or check the data for NaN/inf values and empty targets."
            )

    def _grad_norm(self) -> torch.Tensor | None:
        grads = [p.grad for p in self._params if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads, foreach=True) if grads else None

    def _clip_and_record_norm(self, norm: torch.Tensor | None) -> None:
        if norm is None:
            return
        clip = self.cfg.clip_grad_norm
        log_step = (self.state.step + 1) % max(1, self.cfg.log_every) == 0
        if clip is None and not log_step:
            return  # the norm is only logged on log steps
        if clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self._params, clip, norm, foreach=True)
        if hasattr(norm, "full_tensor"):  # FSDP: a DTensor over the ranks' shards
            norm = norm.full_tensor()
        self._window.add({"grad_norm": norm})

    def _set_lr(self) -> float:
        factor = self.schedule.factor(self.state.step) if self.schedule is not None else 1.0
        for group, base in zip(self.optimizer.param_groups, self._base_lrs):  # type: ignore[union-attr]
            group["lr"] = base * factor
        return self._base_lrs[0] * factor

    # --- logging and validation --------------------------------------------------------------

    def _open_bar(self, total: int) -> None:
        enabled = self.is_main and self.cfg.progress
        self._bar = tqdm(total=total, initial=self.state.step, disable=not enabled, unit="step",
                         dynamic_ncols=True, leave=False) if enabled else None

    def _log_train(self) -> None:
        metrics = self._window.pop()
        if not self.is_main:
            return
        now = time.perf_counter()
        metrics["lr"] = self._lr
        elapsed = max(now - self._log_time, 1e-9)
        metrics["items_per_s"] = self._items * self.world_size / elapsed
        if self._tokens:
            metrics["tokens_per_s"] = self._tokens * self.world_size / elapsed
        self._log_time, self._items, self._tokens = now, 0, 0
        self._metrics_file.write(self.state.step, "train", metrics, epoch=self.state.epoch)  # type: ignore[union-attr]
        if self.events is not None:
            self.events.step(self.run, self.state.step, metrics)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4g}",
                                  items_s=f"{metrics['items_per_s']:.0f}", refresh=False)

    def _validate(self, validate: Validate) -> None:
        model = self.model
        model.eval()  # type: ignore[union-attr]
        try:
            with torch.no_grad():
                metrics = {k: float(v) for k, v in validate().items()}
        finally:
            model.train()  # type: ignore[union-attr]
        train_loss = self._since_eval.pop().get("loss")
        row = dict(metrics) if train_loss is None else {**metrics, "train_loss": train_loss}
        if self.is_main:
            self._metrics_file.write(self.state.step, "val", row, epoch=self.state.epoch)  # type: ignore[union-attr]
            if self.events is not None:
                self.events.evaluated(self.run, self.state.step, "val", row)
            self._overfit.observe(self.state.step, train_loss, metrics.get("val_loss"))
        stop = torch.tensor([float(self._early.observe(metrics))])
        if self.world_size > 1:
            stop = dist_utils.all_reduce_max(stop.to(self._collective_device())).cpu()
        if stop.item():
            self._stop_reason = (f"early stopping: {self._early.metric} did not improve by more than "
                                 f"{self._early.min_delta} for {self._early.patience} evaluations")

    def weighted_means(self, model: nn.Module, loader: Iterable[Any], outputs: Mapping[str, str],
                       weight: Callable[[Any], Any] = lambda batch: 1) -> dict[str, float]:
        """Means of the model's outputs over ``loader``, weighted per batch, over every rank.

        The loop a ``validate()`` callback usually is: each batch is moved to the device and run
        under :meth:`autocast` (in eval mode; the caller's ``no_grad`` from :meth:`steps` holds),
        ``out[key] * weight(batch)`` and the weights are summed on the device (one host sync at
        the end), then over DDP/FSDP ranks, so every rank returns the same whole-set figures.
        Every rank runs its forward passes, as FSDP needs.

        Args:
            model: Returns a dict of scalar tensors for a batch.
            loader: Batches (this rank's shard under DDP).
            outputs: Returned name -> the model output it averages, e.g. ``{"val_loss": "loss"}``;
                an output the model does not return is left out.
            weight: A batch's weight: its item count (the default weighs batches equally), or its
                token count for token-weighted means; an int or a scalar tensor.

        Returns:
            ``{name: mean}`` for each output the model returned.
        """
        was_training = model.training
        model.eval()
        names = list(outputs)
        sums = torch.zeros(len(names) + 1, device=self.device)  # (weighted output sums..., weight sum)
        seen: set[str] = set()
        try:
            for batch in loader:
                batch = move_to_device(batch, self.device, non_blocking=self.device.type == "cuda")
                with self.autocast():
                    out = model(batch)
                w = weight(batch)
                for i, name in enumerate(names):
                    if outputs[name] in out:
                        sums[i] += out[outputs[name]].detach().float() * w
                        seen.add(name)
                sums[-1] += w
        finally:
            model.train(was_training)
        values = dist_utils.all_reduce_sum(sums).tolist()
        total = max(values[-1], 1e-12)
        return {name: values[i] / total for i, name in enumerate(names) if name in seen}

    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    # --- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, tag: Optional[str] = None) -> Path:
        """Write a checkpoint of the current state (rank 0 writes; every rank must call it).

        Args:
            tag: Directory name; ``None`` means ``step_XXXXXXXX``. Only step checkpoints are
                rotated (newest ``cfg.keep_checkpoints`` kept) and found by resume.

        Returns:
            The checkpoint directory.
        """
        self._require_setup()
        bad = ckpt.non_finite_tensors(self.task.state_dict())  # type: ignore[union-attr]
        if self.fsdp:  # each rank checked its own shards: agree, so that every rank stops together
            flag = dist_utils.all_reduce_max(torch.tensor([float(bool(bad))]))
            bad = bad or (["a tensor shard on another rank"] if flag.item() else [])
        if bad:  # every rank holds the same weights, so every rank stops here
            raise TrainingStopped(
                f"refusing to checkpoint step {self.state.step}: the weights hold NaN/inf ({', '.join(bad[:3])}); "
                f"the last valid checkpoint is {self._last_path or 'none'}. Try a lower trainer.lr or a "
                "tighter trainer.clip_grad_norm."
            )
        state = self._state_dict()  # a collective under DDP (gathers every rank's RNG state)
        name = tag or ckpt.step_dir_name(self.state.step)
        path = ckpt.checkpoint_root(self.run.run_dir) / name
        extra = self._save_sharded(name) if self.fsdp else None
        dist_utils.barrier()
        if self.is_main:
            self._signal.saving = True
            weights = self._unsharded if self.fsdp else self.task
            try:
                path = ckpt.write_checkpoint(path.parent, name, weights, state, self.run.config_yaml, self.state.step,
                                             extra_dirs=extra)
            finally:
                self._signal.saving = False
            if tag is None and self.cfg.keep_checkpoints > 0:
                ckpt.prune_checkpoints(self.run.run_dir, self.cfg.keep_checkpoints, protect=[path])
            self._metrics_file.write(self.state.step, "checkpoint", {}, path=str(path))  # type: ignore[union-attr]
            if self.events is not None:
                self.events.checkpoint_saved(self.run, self.state.step, path)
        dist_utils.barrier()
        self._last_saved_step, self._last_path = self.state.step, path
        return path

    def _save_sharded(self, name: str) -> dict[str, Path] | None:
        """FSDP: every rank writes its shard (DCP); rank 0 gathers the full weights into the
        unsharded task. Returns the sharded directory to move into the checkpoint (rank 0)."""
        import shutil

        full = fsdp.full_weights(self.task)  # type: ignore[arg-type]
        sharded = ckpt.checkpoint_root(self.run.run_dir) / f".tmp-{name}-{fsdp.SHARDED}"
        if self.is_main:
            shutil.rmtree(sharded, ignore_errors=True)
        dist_utils.barrier()
        fsdp.save_sharded(self.task, self.optimizer, sharded)  # type: ignore[arg-type]
        if not self.is_main:
            return None
        self._unsharded.load_state_dict(full)  # type: ignore[union-attr]
        return {fsdp.SHARDED: sharded}

    def _state_dict(self) -> dict[str, Any]:
        schedule = self.schedule
        return {
            "format_version": ckpt.FORMAT_VERSION,
            "train_state": asdict(self.state),
            # Under FSDP the optimizer state is sharded: it lives in the checkpoint's sharded/ (DCP).
            "optimizer": {} if self.fsdp else self.optimizer.state_dict(),  # type: ignore[union-attr]
            "schedule": {"base_lrs": list(self._base_lrs),
                         "total_steps": schedule.total_steps if schedule else -1,
                         "warmup_steps": schedule.warmup_steps if schedule else 0},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "early_stopping": self._early.state_dict(),
            "overfit": self._overfit.state_dict(),
            "rng": dist_utils.all_gather_object(get_rng_states()),
            "seed": self.seed,
            "world_size": self.world_size,
        }

    def _maybe_resume(self) -> None:
        resume = self.cfg.resume
        resumed = False
        if resume == "auto":
            found = self._newest_usable() if self.is_main else None
            found_str = dist_utils.broadcast_object(str(found) if found else None)
            if found_str is not None:
                self.load_checkpoint(Path(found_str))
                resumed = True
        elif resume != "never":
            try:  # an explicit choice: a problem with it is an error, not a fallback
                self.load_checkpoint(Path(resume))
            except ckpt.CheckpointError as err:
                raise ckpt.CheckpointError(f"trainer.resume={resume} is not a usable checkpoint: {err}") from None
            resumed = True
        if not resumed and self.cfg.init_from:
            self._init_from(Path(self.cfg.init_from))

    def _newest_usable(self) -> Path | None:
        """The newest checkpoint that loads, is finite and was written by this run's config.

        Unusable checkpoints are skipped with a warning (an older one is used). When checkpoints
        exist but none is usable, the run refuses to start over and overwrite them.
        """
        candidates = ckpt.list_checkpoints(self.run.run_dir)
        problems = []
        for path in candidates:
            try:
                ckpt.read_checkpoint(path)
            except ckpt.CheckpointError as err:
                log.warning("Skipping checkpoint: %s", err)
                problems.append(f"{path.name}: {str(err).removeprefix(str(path)).lstrip(':/ ')}")
                continue
            return path
        if candidates:
            raise ResumeRefused(
                f"every checkpoint in {ckpt.checkpoint_root(self.run.run_dir)} is unusable ({'; '.join(problems)}); "
                "refusing to start over and overwrite them. To start from step 0 anyway, set trainer.resume=never; "
                "to keep them, choose another hydra.run.dir."
            )
        return None

    def _check_same_config(self, path: Path) -> None:
        """Refuse to resume when the checkpoint's config differs outside :data:`RESUME_MAY_CHANGE`."""
        differing = config_differences((Path(path) / ckpt.CONFIG).read_text(encoding="utf-8"), self.run.config_yaml)
        if differing:
            shown = ", ".join(f"{k} (checkpoint {a}, now {b})" for k, a, b in differing[:8])
            more = f" and {len(differing) - 8} more" if len(differing) > 8 else ""
            raise ResumeRefused(
                f"cannot resume from {path}: the config differs in {shown}{more}. Resume continues one run "
                "with its own settings; only budgets, logging and evaluation may change (docs/training.md#resume). "
                f"Undo the change, or start a new run from these weights with trainer.init_from={path} in a "
                "new run dir."
            )

    def _init_from(self, path: Path) -> None:
        """Start a new run from a checkpoint's (or export's) weights: optimizer, step and schedule fresh."""
        try:
            ema = ckpt.load_model_weights(self.task, path)  # type: ignore[arg-type]
        except RuntimeError as err:
            raise FrameworkError(f"trainer.init_from={path}: its weights do not fit this model "
                                 f"({first_line(err, type(err).__name__)})") from None
        if self.ema is not None:
            self.ema.module.load_state_dict(self.task.state_dict())  # type: ignore[union-attr]
        log.info("Initialised %sweights from %s: a new run from step 0, not a resume", "EMA " if ema else "", path)

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights and every piece of training state from a checkpoint directory.

        Raises:
            CheckpointError: The checkpoint fails verification, or its files are unusable.
            ResumeRefused: It was written with a config that differs in a key that may not change.
        """
        _, state = ckpt.read_checkpoint(path)
        self._check_same_config(path)
        if self.fsdp:
            sharded = Path(path) / fsdp.SHARDED
            if not sharded.is_dir():
                raise ValueError(f"{path} has no {fsdp.SHARDED}/ (it was not written under trainer.distributed=fsdp); "
                                 "resume it with trainer.distributed=ddp, or start with trainer.resume=never")
            fsdp.load_sharded(self.task, self.optimizer, sharded)  # type: ignore[arg-type]
            if self.is_main:
                ckpt.apply_weights(self._unsharded, Path(path) / ckpt.WEIGHTS)  # type: ignore[arg-type]
        else:
            ckpt.apply_weights(self.task, Path(path) / ckpt.WEIGHTS)  # type: ignore[arg-type]
            self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[union-attr]
        self._base_lrs = [float(lr) for lr in state["schedule"]["base_lrs"]]
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.state = TrainState(**state["train_state"])
        self._early.load_state_dict(state["early_stopping"])
        self._overfit.load_state_dict(state["overfit"])
        rng = state["rng"]
        set_rng_states(rng[self.rank] if self.rank < len(rng) else rng[0])
        self._last_saved_step, self._last_path = self.state.step, Path(path)
        if self.is_main:
            dropped = self._metrics_file.supersede_after(self.state.step)  # type: ignore[union-attr]
            if dropped:
                log.info("metrics.jsonl: %d row(s) logged after step %d by the interrupted attempt moved to %s",
                         dropped, self.state.step, self._metrics_file.superseded_path)  # type: ignore[union-attr]
        log.info("Resumed from %s (step %d, epoch %d)", path, self.state.step, self.state.epoch)

    def _require_setup(self) -> None:
        if self.optimizer is None:
            raise RuntimeError("Call engine.setup(task) before engine.steps/backward/save_checkpoint")


def config_differences(checkpoint_yaml: str, current_yaml: str) -> list[tuple[str, str, str]]:
    """``(key, checkpoint value, current value)`` for every flattened config key that differs,
    except those matching :data:`~framework.training.config.RESUME_MAY_CHANGE`.

    Either side empty or unparseable (a run not made from a config) means nothing to compare.
    """
    import fnmatch

    import yaml

    from framework.tracking.mlflow_tracker import flatten

    try:
        old, new = yaml.safe_load(checkpoint_yaml), yaml.safe_load(current_yaml)
    except yaml.YAMLError:
        return []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return [(k, a.get(k, "(absent)"), b.get(k, "(absent)")) for k in keys
            if not any(fnmatch.fnmatchcase(k, p) for p in RESUME_MAY_CHANGE)]
