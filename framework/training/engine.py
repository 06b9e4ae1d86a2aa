"""The training engine: everything around a modality's forward/loss/backward.

A modality's loop reads top to bottom::

    with Engine(cfg.trainer, run, events, seed=cfg.seed) as engine:
        model = engine.setup(task)
        loader = engine.dataloader(train_set)
        for batch in engine.steps(loader, validate=lambda: {"val_loss": val_loss(model)}):
            with engine.autocast():
                out = model(batch)              # a dict with "loss" and loggable parts
            engine.backward(out["loss"], out)   # exactly once per batch

:meth:`Engine.steps` yields micro-batches; :meth:`Engine.backward` takes the optimizer step on each
accumulation boundary; between two yields the engine does its bookkeeping (logging, validation,
checkpoints, signal checks) on step boundaries only. The engine is assembled from parts, each
with its own module and tests:

* a :class:`~framework.training.strategy.Strategy` (one device, DDP, FSDP2): wrapping, ``no_sync``,
  gradient norms, flags agreed across ranks, what a checkpoint holds, sharded save and load;
* an :class:`~framework.training.stepper.OptimizerStepper`: AdamW, fp16 loss scaling, clipping, lr, EMA;
* a :class:`~framework.training.checkpointer.Checkpointer`: save, verify, resume, ``init_from``;
* a :class:`~framework.training.metric_logger.MetricLogger`: metric windows, ``metrics.jsonl``,
  progress, events.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping, Optional, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from framework.run_info import RunInfo
from framework.training import checkpoint as ckpt
from framework.training import distributed as dist_utils
from framework.training.checkpointer import Checkpointer, SameData, config_differences
from framework.training.config import TrainerConfig, validate_trainer
from framework.training.data import (StreamDataset, batches_per_epoch, epoch_batches, make_dataloader, stream_of,
                                     weighted_means)
from framework.training.device import autocast, batch_size_of, move_to_device, resolve_device, resolve_precision
from framework.training.ema import ModelEMA
from framework.training.fsdp import ShardPlan
from framework.training.errors import Interrupted, ResumeRefused, TrainingStopped
from framework.training.metric_logger import EarlyStopper, EngineEvents, MetricLogger, OverfitWatch
from framework.training.schedule import Schedule
from framework.training.seed import get_rng_states, seed_everything, set_deterministic, set_rng_states
from framework.training.signals import StopSignal
from framework.training.stepper import OptimizerStepper, build_adamw
from framework.training.strategy import make_strategy

__all__ = ["Engine", "EngineEvents", "Interrupted", "ResumeRefused", "TrainState", "TrainingStopped",
           "config_differences"]

log = logging.getLogger(__name__)

Validate = Callable[[], Mapping[str, float]]


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
        data_fingerprint: What the run trains on (:func:`framework.data.version.data_fingerprint`):
            kept in every checkpoint, and a resume onto other data is refused (:class:`SameData`).
    """

    def __init__(self, cfg: TrainerConfig, run: RunInfo, events: EngineEvents | None = None, seed: int = 0,
                 data_fingerprint: Mapping[str, str] | None = None) -> None:
        validate_trainer(cfg, check_paths=False)  # one line naming every bad value; a ValueError too
        self.cfg, self.run, self.events, self.seed = cfg, run, events, seed
        self.rank, self.world_size, self.local_rank = dist_utils.init_distributed()
        self.device = resolve_device(cfg.device, self.local_rank)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.strategy = make_strategy(cfg.distributed, self.device, self.rank, self.world_size,
                                      ShardPlan.from_config(cfg.fsdp, self.precision))
        self.state = TrainState()
        self.task: nn.Module | None = None  # the module the optimizer updates
        self.model: nn.Module | None = None  # the module the loop calls (compiled, DDP-wrapped)
        self.stepper: OptimizerStepper | None = None
        self.schedule: Schedule | None = None
        self.total_steps: int | None = None
        self._signal = StopSignal()
        self.metrics = MetricLogger(run, events, is_main=self.is_main, world_size=self.world_size,
                                    log_every=cfg.log_every, progress=cfg.progress)
        self.checkpointer = Checkpointer(run, self.strategy, keep=cfg.keep_checkpoints, signal=self._signal,
                                         on_saved=self.metrics.checkpoint)
        self.data_fingerprint = dict(data_fingerprint or {})
        if data_fingerprint is not None:
            self.checkpointer.checks.append(SameData(data_fingerprint, allow_change=cfg.allow_data_change))
        self._overfit = OverfitWatch()
        es = cfg.early_stopping
        self._early = EarlyStopper(es.metric, es.mode, es.patience, es.min_delta)
        self._micro, self._accum_target, self._per_epoch, self._batch_items = 0, cfg.accumulate, 0, 0
        self._boundary = self._stepped = self._stop_agreed = self._awaiting_backward = False
        self._stop_reason: str | None = None
        self._stream: StreamDataset | None = None  # the training loader's shard stream, if any
        self._saved_data_state: Mapping[str, Any] | None = None  # the resumed checkpoint's data_state

    # --- properties and small helpers --------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def fsdp(self) -> bool:
        """True when the model is sharded with FSDP2 (``trainer.distributed=fsdp`` under torchrun)."""
        return self.strategy.name == "fsdp"

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer (after :meth:`setup`)."""
        return self.stepper.optimizer if self.stepper is not None else None

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        """The fp16 loss scaler (after :meth:`setup`, with ``precision=fp16`` only)."""
        return self.stepper.scaler if self.stepper is not None else None

    @property
    def ema(self) -> ModelEMA | None:
        """The EMA copy (after :meth:`setup`, with ``ema_decay`` only)."""
        return self.stepper.ema if self.stepper is not None else None

    def autocast(self) -> ContextManager[Any]:
        """Autocast for the run's precision (bf16/fp16); a null context in fp32."""
        return autocast(self.precision, self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """``model`` without its DDP and ``torch.compile`` wrappers."""
        return ckpt.unwrap_module(model)

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The module to evaluate: the EMA copy when ``ema_decay`` is set, else the unwrapped model."""
        return self.stepper.eval_module(self.unwrap(model)) if self.stepper is not None else self.unwrap(model)

    def close(self) -> None:
        """Restore the signal handlers that were there before :meth:`setup`; close the progress bar;
        drop the DDP wrapper (``model`` is then the module it wrapped), whose reducer would keep the
        process group alive after the run destroys it."""
        self._signal.restore()
        self.metrics.close()
        if self.model is not None:
            self.model = self.strategy.release(self.model)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- setup -------------------------------------------------------------------------------

    def setup(self, task: nn.Module, *, param_groups: Optional[list[dict[str, Any]]] = None,
              channels_last: bool = False) -> nn.Module:
        """Prepare ``task`` for training and return the module to call in the loop.

        Seeds (``seed + rank``), lets the strategy place the task, builds AdamW (weight decay only
        on parameters with ``ndim >= 2``) unless ``param_groups`` are given, the fp16 GradScaler
        and the EMA copy, restores a checkpoint per ``cfg.resume`` (or weights per
        ``cfg.init_from``), then compiles and wraps (DDP) as configured. Installs the SIGTERM/SIGINT
        handlers (undone by :meth:`close`).

        With ``trainer.distributed=fsdp`` under torchrun, ``task`` itself is sharded with FSDP2 and
        filled with rank 0's weights (see :class:`~framework.training.strategy.FSDP2`): on the
        other ranks it may be built on the meta device. No rank holds the whole model afterwards,
        so every rank runs its forward passes together (evaluation too). EMA and ``param_groups``
        are not available then.

        Args:
            task: The model with its loss; its ``state_dict`` is what checkpoints hold.
            param_groups: Optimizer parameter groups (each may carry its own ``lr``), instead of
                the default decay/no-decay split.
            channels_last: Use the channels-last memory format (faster convolutions on GPUs).
        """
        cfg = self.cfg
        if cfg.deterministic:
            set_deterministic(True)
        seed_everything(self.seed + self.rank)
        self.strategy.check_options(ema=bool(cfg.ema_decay), param_groups=param_groups is not None)
        self.task = self.strategy.prepare(task, torch.channels_last if channels_last else torch.preserve_format)
        optimizer = build_adamw(self.task, lr=cfg.lr, betas=(float(cfg.betas[0]), float(cfg.betas[1])),
                                weight_decay=cfg.weight_decay, device=self.device, param_groups=param_groups)
        self.stepper = OptimizerStepper(
            self.task, optimizer, grad_norm=self.strategy.grad_norm, fp16=self.precision == "fp16",
            device_type=self.device.type, ema=ModelEMA(self.task, cfg.ema_decay) if cfg.ema_decay else None,
            clip_grad_norm=cfg.clip_grad_norm)
        self.checkpointer.remove_partial_writes()
        self._resume_or_init()
        model = cast(nn.Module, torch.compile(self.task)) if cfg.compile else self.task
        self.model = self.strategy.wrap(model)
        self._signal.install()
        return self.model

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
        return make_dataloader(dataset, batch_size=batch_size or self.cfg.batch_size, seed=self.seed, rank=self.rank,
                               world_size=self.world_size, shuffle=shuffle, collate_fn=collate_fn, drop_last=drop_last,
                               num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda")

    # --- the step loop -----------------------------------------------------------------------

    def steps(self, loader: Iterable[Any], validate: Optional[Validate] = None) -> Iterator[Any]:
        """Yield micro-batches on the device until the step budget is spent or training stops.

        The budget is ``cfg.max_steps`` when positive, else ``cfg.epochs * ceil(batches / accumulate)``.
        Call :meth:`backward` exactly once per yielded micro-batch. ``validate()`` runs every
        ``cfg.eval_every`` steps (0: at each epoch end) under ``eval()`` and ``no_grad``.

        Raises:
            Interrupted: After a SIGTERM/SIGINT, once the checkpoint at the stopping step is saved.
            TrainingStopped: From :meth:`backward`, after too many non-finite losses in a row.
            RuntimeError: A batch was not given to :meth:`backward` before the next was asked for.
        """
        self._require_setup()
        self._per_epoch = batches_per_epoch(loader)
        self._stream = stream_of(loader)
        refused = self._stream.check_resume(self._saved_data_state, self.state.batches_in_epoch) if self._stream else None
        if refused:
            raise ResumeRefused(f"cannot resume mid-epoch: {refused}")
        per_step = math.ceil(self._per_epoch / self.cfg.accumulate)
        total = self.total_steps = self.cfg.max_steps if self.cfg.max_steps > 0 else self.cfg.epochs * per_step
        self.schedule = Schedule.from_ratio(total, self.cfg.warmup_ratio, self.cfg.schedule, self.cfg.min_lr_ratio)
        self.metrics.start(total, self.state.step)
        self.metrics.chance.after_step = self.schedule.warmup_steps if self.schedule else 0
        try:
            while self.state.step < total and self._stop_reason is None:
                for batch in self._epoch_batches(loader):
                    self._awaiting_backward = True
                    yield batch
                    if self._awaiting_backward:
                        raise RuntimeError(f"engine.backward(loss) was not called for micro-batch "
                                           f"{self.state.batches_in_epoch} of epoch {self.state.epoch}: call it "
                                           "exactly once for every batch engine.steps() yields")
                    if self._boundary and self._after_boundary(validate, total):
                        break
                else:
                    if self.state.batches_in_epoch:  # the loop did not end on a step boundary
                        self._end_epoch(validate)
            self._finish()
        finally:
            self._awaiting_backward = False
            self.metrics.close()

    def _epoch_batches(self, loader: Iterable[Any]) -> Iterator[Any]:
        """The rest of the current epoch's micro-batches, setting each one's accumulation group size."""
        acc = self.cfg.accumulate
        for batch in epoch_batches(loader, self.state.epoch, self.state.batches_in_epoch):
            index = self.state.batches_in_epoch
            # The epoch's last group may be short: it still ends in an optimizer step.
            self._accum_target = min(acc, self._per_epoch - (index - index % acc))
            self.state.batches_in_epoch += 1
            self._batch_items = batch_size_of(batch)
            yield move_to_device(batch, self.device, non_blocking=self.device.type == "cuda")

    def _after_boundary(self, validate: Optional[Validate], total: int) -> bool:
        """Bookkeeping after an accumulation boundary; True when the loop must stop."""
        self._boundary = False
        step = self.state.step
        if self._stepped:
            if self.metrics.is_log_step(step):
                self.metrics.train(step, self.state.epoch, self._stepper.lr)
            if validate is not None and self.cfg.eval_every > 0 and step % self.cfg.eval_every == 0:
                self._validate(validate)
        if self.state.batches_in_epoch >= self._per_epoch:
            self._end_epoch(validate)
        done = step >= total or self._stop_reason is not None
        every = self.cfg.checkpoint_every
        if self._stepped and every > 0 and step % every == 0 and not done:
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
        last = self.checkpointer
        path = last.last_path if last.last_step == self.state.step and last.last_path else self.save_checkpoint()
        log.warning("Stopped by a signal at step %d; resume from %s", self.state.step, path)
        raise Interrupted(path, self.state.step)

    def _finish(self) -> None:
        if self.metrics.window and not self.metrics.is_log_step(self.state.step):
            self.metrics.train(self.state.step, self.state.epoch, self._stepper.lr)
        if self.checkpointer.last_step != self.state.step:
            self.save_checkpoint()
        # The averaged weights are the model to evaluate and export; the checkpoint just written
        # keeps the raw weights too, for resuming.
        if self._stepper.finish(cast(nn.Module, self.task)):
            log.info("Training done: the task now holds the EMA weights (trainer.ema_decay=%s)", self.cfg.ema_decay)
        if self._stop_reason:
            log.info("Training stopped at step %d: %s", self.state.step, self._stop_reason)

    # --- backward and the optimizer step -----------------------------------------------------

    def backward(self, loss: torch.Tensor, metrics: Optional[Mapping[str, Any]] = None) -> bool:
        """Backpropagate one micro-batch's loss; take the optimizer step on an accumulation boundary.

        Call it exactly once for each batch :meth:`steps` yields.

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
            RuntimeError: Called a second time for one batch, or outside :meth:`steps`.
        """
        stepper = self._stepper
        if not self._awaiting_backward:
            raise RuntimeError("engine.backward was called twice for one batch, or outside engine.steps(): "
                               "call it exactly once for every batch engine.steps() yields")
        self._awaiting_backward = False
        self._micro += 1
        last = self._micro >= self._accum_target
        scaled = loss / self._accum_target if self._accum_target > 1 else loss
        with self.strategy.no_sync(cast(nn.Module, self.model), last):
            stepper.scale(scaled).backward()
        self.metrics.micro_batch(loss, metrics, self._batch_items)
        if not last:
            return False
        self._micro, self._accum_target = 0, self.cfg.accumulate
        return self._optimizer_step(stepper)

    def _optimizer_step(self, stepper: OptimizerStepper) -> bool:
        self._boundary = True
        norm = stepper.norm_to_check()
        flags = self.strategy.agree(self.metrics.pending, norm, self._signal.requested)
        self._stop_agreed = flags.stop
        if flags.bad is not None:
            self._skip_step(stepper, flags.bad)
            return False
        factor = self.schedule.factor(self.state.step) if self.schedule is not None else 1.0
        logged_norm = stepper.step(norm, factor, need_norm=self.metrics.is_log_step(self.state.step + 1))
        if logged_norm is not None:
            self.metrics.grad_norm(self.strategy.full_norm(logged_norm))
        self.state.step += 1
        self.state.bad_steps_in_row = 0
        self.metrics.step_taken(self.state.step)
        self._stepped = True
        return True

    def _skip_step(self, stepper: OptimizerStepper, what: str) -> None:
        stepper.skip()
        self.metrics.step_skipped()
        self._stepped = False
        self.state.bad_steps_total += 1
        self.state.bad_steps_in_row += 1
        detail = "loss" if what == "loss" else "gradient norm (the loss was finite)"
        log.warning("Non-finite %s at step %d: optimizer step skipped (%d in a row, %d in total)",
                    detail, self.state.step, self.state.bad_steps_in_row, self.state.bad_steps_total)
        if self.state.bad_steps_in_row >= self.cfg.max_bad_steps:
            finite = self.metrics.last_finite
            last = "none yet" if finite is None else f"{float(finite.mean_tensor('loss')):.6g}"
            raise TrainingStopped(
                f"Training stopped at step {self.state.step}: {self.state.bad_steps_in_row} non-finite "
                f"{'losses' if what == 'loss' else 'gradients'} in a row "
                f"(trainer.max_bad_steps={self.cfg.max_bad_steps}); last finite loss: {last}. "
                "Try a lower trainer.lr, trainer.precision=fp32, a tighter trainer.clip_grad_norm, "
                "or check the data for NaN/inf values and empty targets."
            )

    # --- validation --------------------------------------------------------------------------

    def _validate(self, validate: Validate) -> None:
        model = cast(nn.Module, self.model)
        model.eval()
        try:
            with torch.no_grad():
                metrics = {k: float(v) for k, v in validate().items()}
        finally:
            model.train()
        train_loss = self.metrics.validation(self.state.step, self.state.epoch, metrics)
        if self.is_main:
            self._overfit.observe(self.state.step, train_loss, metrics.get("val_loss"))
        if self.strategy.any_rank(self._early.observe(metrics)):
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
        return weighted_means(model, loader, outputs, weight, device=self.device, autocast=self.autocast)

    # --- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, tag: Optional[str] = None) -> Path:
        """Write a checkpoint of the current state (rank 0 writes; every rank must call it).

        Args:
            tag: Directory name; ``None`` means ``step_XXXXXXXX``. Only step checkpoints are
                rotated (newest ``cfg.keep_checkpoints`` kept) and found by resume.

        Returns:
            The checkpoint directory.

        Raises:
            TrainingStopped: The weights hold NaN/inf (nothing is written).
        """
        stepper = self._stepper
        return self.checkpointer.save(self.state.step, self._state_dict(stepper), stepper.optimizer, tag)

    def _state_dict(self, stepper: OptimizerStepper) -> dict[str, Any]:
        parts, schedule = stepper.state_dict(), self.schedule
        return {
            "format_version": ckpt.FORMAT_VERSION,
            "train_state": asdict(self.state),
            "optimizer": self.strategy.optimizer_state(stepper.optimizer),  # FSDP2: {} (in sharded/)
            "schedule": {"base_lrs": parts["base_lrs"],
                         "total_steps": schedule.total_steps if schedule else -1,
                         "warmup_steps": schedule.warmup_steps if schedule else 0},
            "scaler": parts["scaler"],
            "ema": parts["ema"],
            "early_stopping": self._early.state_dict(),
            "overfit": self._overfit.state_dict(),
            "rng": dist_utils.all_gather_object(get_rng_states()),  # a collective: every rank's state
            "seed": self.seed,
            "world_size": self.world_size,
            SameData.key: self.data_fingerprint,
            # a shard stream's layout and positions (the position itself is train_state's epoch and batches)
            "data_state": self._stream.state_dict(self.state.batches_in_epoch) if self._stream else None,
        }

    def _resume_or_init(self) -> None:
        resume = self.cfg.resume
        source = self.checkpointer.resume_source(resume)
        if source is None:
            if self.cfg.init_from:  # a new run from trained weights: optimizer, step and schedule fresh
                self.checkpointer.init_from(self.cfg.init_from)
                self._stepper.reset_ema()
            return
        try:
            self.load_checkpoint(source)
        except ckpt.CheckpointError as err:
            if resume == "auto":
                raise
            # an explicit choice: a problem with it is an error, not a fallback
            raise ckpt.CheckpointError(f"trainer.resume={resume} is not a usable checkpoint: {err}") from None

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights and every piece of training state from a checkpoint directory.

        Raises:
            CheckpointError: The checkpoint fails verification, or its files are unusable.
            ResumeRefused: It was written with a config that differs in a key that may not change.
        """
        stepper = self._stepper
        state = self.checkpointer.restore(Path(path), stepper.optimizer)
        stepper.load_state_dict({"base_lrs": state["schedule"]["base_lrs"], "scaler": state["scaler"],
                                 "ema": state["ema"]})
        self.state = TrainState(**state["train_state"])
        self._saved_data_state = state.get("data_state")
        self._early.load_state_dict(state["early_stopping"])
        self._overfit.load_state_dict(state["overfit"])
        rng = state["rng"]
        set_rng_states(rng[self.rank] if self.rank < len(rng) else rng[0])
        self.metrics.resumed_at(self.state.step)
        log.info("Resumed from %s (step %d, epoch %d)", path, self.state.step, self.state.epoch)

    @property
    def _stepper(self) -> OptimizerStepper:
        self._require_setup()
        return cast(OptimizerStepper, self.stepper)

    def _require_setup(self) -> None:
        if self.stepper is None:
            raise RuntimeError("Call engine.setup(task) before engine.steps/backward/save_checkpoint")
