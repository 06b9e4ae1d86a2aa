"""The ``trainer:`` config node: everything the engine needs, nothing a modality owns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from framework.errors import FrameworkError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FSDP_DTYPES = ("bfloat16", "float16", "float32")
SCHEDULES = ("cosine", "linear", "constant")

#: Config keys (``fnmatch`` patterns on dotted paths) that may differ between a checkpoint and the
#: run resuming from it: budgets, logging and bookkeeping, what happens after training. Anything
#: else (lr, batch size, model, data, seed...) would mix two runs' settings, so resume refuses it.
RESUME_MAY_CHANGE = (
    "trainer.max_steps", "trainer.epochs", "trainer.log_every", "trainer.eval_every",
    "trainer.checkpoint_every", "trainer.keep_checkpoints", "trainer.progress", "trainer.resume",
    "trainer.init_from", "trainer.num_workers", "trainer.max_bad_steps", "trainer.device",
    "trainer.early_stopping.*", "tracking.*", "stages", "stages.*", "evaluation.*", "success.*",
    "sweep.*", "checkpoint", "callbacks.*", "allowed_targets", "allowed_targets.*", "data.gates.*", "audit.*",
    "data.unlabeled", "data.unlabeled_format", "trainer.allow_data_change",
    "trainer.fsdp.cpu_offload", "trainer.fsdp.activation_checkpointing", "trainer.fsdp.reshard_after_forward",
)


@dataclass
class EarlyStoppingConfig:
    """Stop when ``metric`` has not improved by ``min_delta`` for ``patience`` evaluations.

    ``patience: 0`` turns early stopping off.
    """

    metric: str = "val_loss"
    mode: str = "min"
    patience: int = 0
    min_delta: float = 0.0


@dataclass
class FSDPConfig:
    """``trainer.fsdp``: how FSDP2 shards and computes (used with ``trainer.distributed=fsdp``).

    Attributes:
        param_dtype: Dtype the gathered parameters compute in (``MixedPrecisionPolicy.param_dtype``):
            ``auto`` follows ``trainer.precision`` (bf16 -> bfloat16, fp16 -> float16, fp32 -> the
            parameters' own dtype), or ``bfloat16`` / ``float16`` / ``float32``. The sharded
            parameters and optimizer state keep the parameters' own dtype.
        reduce_dtype: Dtype of the gradient reduce-scatter (``float32`` for exact sums), or ``null``
            for ``param_dtype``.
        cpu_offload: Keep sharded parameters, gradients and optimizer state in host memory
            (``CPUOffloadPolicy``); the optimizer step runs on the CPU.
        activation_checkpointing: Recompute each unit's activations in the backward pass instead of
            keeping them (``checkpoint_wrapper`` on every ``fsdp_units()`` module).
        reshard_after_forward: Free each unit's gathered parameters after its forward (gathered
            again for the backward); ``false`` keeps them, trading memory for one all-gather.
    """

    param_dtype: str = "auto"
    reduce_dtype: Optional[str] = "float32"
    cpu_offload: bool = False
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True

    def problems(self) -> list[str]:
        """Every invalid value, as ``"trainer.fsdp.KEY=VALUE is invalid: use ..."``."""
        out = []
        if self.param_dtype != "auto" and self.param_dtype not in FSDP_DTYPES:
            out.append(f"trainer.fsdp.param_dtype={self.param_dtype!r} is invalid: use auto, {', '.join(FSDP_DTYPES)}")
        if self.reduce_dtype is not None and self.reduce_dtype not in FSDP_DTYPES:
            out.append(f"trainer.fsdp.reduce_dtype={self.reduce_dtype!r} is invalid: use null, {', '.join(FSDP_DTYPES)}")
        return out


@dataclass
class TrainerConfig:
    """Settings of the training engine (``framework.training.Engine``).

    Step counts are optimizer steps (after gradient accumulation).
    """

    epochs: int = 1
    max_steps: int = -1  # -1: derived from epochs and the train loader's length
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_ratio: float = 0.05  # fraction of max_steps spent warming up linearly
    schedule: str = "cosine"  # cosine | linear | constant (after warmup)
    min_lr_ratio: float = 0.0  # final lr as a fraction of lr
    precision: str = "auto"  # auto | fp32 | bf16 | fp16; auto = bf16 on a GPU that has it, else fp32
    accumulate: int = 1  # micro-batches per optimizer step
    clip_grad_norm: Optional[float] = 1.0  # null disables clipping
    device: str = "auto"  # auto (cuda > cpu) | cpu | cuda | cuda:N
    deterministic: bool = False  # deterministic algorithms (slower), for bit-exact reruns
    compile: bool = False  # torch.compile the model
    distributed: str = "ddp"  # ddp | fsdp (FSDP2 fully_shard, DCP sharded checkpoints); used under torchrun
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)  # mixed precision, CPU offload, activation checkpointing
    num_workers: int = 0  # DataLoader workers
    log_every: int = 10  # optimizer steps between step-metric events
    eval_every: int = 0  # optimizer steps between validations; 0 = once per epoch
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 2  # newest N step checkpoints kept on disk
    resume: str = "auto"  # auto (newest valid in the run dir) | never | a checkpoint directory
    init_from: Optional[str] = None  # a checkpoint whose weights start a new run (fine-tuning; not a resume)
    allow_data_change: bool = False  # resume even when the train/val data differ from the checkpoint's (a warning)
    max_bad_steps: int = 5  # non-finite losses in a row before the run stops
    progress: bool = True  # progress bar on the main process
    ema_decay: Optional[float] = None  # e.g. 0.999 keeps an exponential moving average of the weights
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


class TrainerConfigError(FrameworkError, ValueError):
    """A ``trainer.*`` setting has an invalid value; the message names it and the valid values."""


def _get(cfg: Any, key: str) -> Any:
    return cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key)


def trainer_problems(cfg: Any, check_paths: bool = True) -> list[str]:
    """Every invalid ``trainer.*`` value in ``cfg`` (a :class:`TrainerConfig` or a mapping), as
    ``"trainer.KEY=VALUE is invalid: use ..."``; ``check_paths`` also checks that ``resume`` and
    ``init_from`` name existing directories."""
    checks: list[tuple[str, Any, bool, str]] = []

    def need(key: str, ok: bool, valid: str, value: Any = None) -> None:
        checks.append((key, _get(cfg, key) if value is None else value, ok, valid))

    g = lambda key: _get(cfg, key)  # noqa: E731
    need("epochs", g("epochs") >= 1 or g("max_steps") > 0, "an integer >= 1 (or set trainer.max_steps > 0)")
    need("max_steps", g("max_steps") == -1 or g("max_steps") >= 1, "-1 (from epochs) or an integer >= 1")
    need("batch_size", g("batch_size") >= 1, "an integer >= 1")
    need("lr", g("lr") >= 0 and g("lr") == g("lr") and g("lr") != float("inf"), "a finite number >= 0")
    need("weight_decay", g("weight_decay") >= 0, "a number >= 0")
    betas = list(g("betas"))
    need("betas", len(betas) == 2 and all(0 <= float(b) < 1 for b in betas), "two numbers in [0, 1), e.g. [0.9, 0.999]")
    need("warmup_ratio", 0 <= g("warmup_ratio") < 1, "a number in [0, 1)")
    need("schedule", g("schedule") in SCHEDULES, f"one of {', '.join(SCHEDULES)}")
    need("min_lr_ratio", 0 <= g("min_lr_ratio") <= 1, "a number in [0, 1]")
    need("precision", g("precision") in PRECISIONS, f"one of {', '.join(PRECISIONS)}")
    need("accumulate", g("accumulate") >= 1, "an integer >= 1")
    clip = g("clip_grad_norm")
    need("clip_grad_norm", clip is None or clip > 0, "a number > 0, or null to disable clipping")
    need("device", bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", str(g("device")))), "auto, cpu, cuda or cuda:N")
    need("num_workers", g("num_workers") >= 0, "an integer >= 0")
    need("log_every", g("log_every") >= 1, "an integer >= 1")
    need("eval_every", g("eval_every") >= 0, "an integer >= 0 (0: once per epoch)")
    need("checkpoint_every", g("checkpoint_every") >= 0, "an integer >= 0 (0: only at the end)")
    need("keep_checkpoints", g("keep_checkpoints") >= 0, "an integer >= 0 (0: keep all)")
    resume = str(g("resume"))
    need("resume", resume in ("auto", "never") or not check_paths or Path(resume).is_dir(),
         "auto, never, or an existing checkpoint directory")
    init_from = g("init_from")
    need("init_from", init_from is None or not check_paths or Path(str(init_from)).is_dir(),
         "null or an existing checkpoint (or export) directory")
    need("max_bad_steps", g("max_bad_steps") >= 1, "an integer >= 1")
    ema = g("ema_decay")
    need("ema_decay", ema is None or 0 < ema < 1, "null or a number in (0, 1), e.g. 0.999")
    es = g("early_stopping")
    need("early_stopping.mode", _get(es, "mode") in ("min", "max"), "min or max", _get(es, "mode"))
    need("early_stopping.patience", _get(es, "patience") >= 0, "an integer >= 0 (0: off)", _get(es, "patience"))
    fsdp = g("fsdp")
    fsdp_problems = [] if fsdp is None else (fsdp if isinstance(fsdp, FSDPConfig) else FSDPConfig(**dict(fsdp))).problems()
    return [f"trainer.{key}={value!r} is invalid: use {valid}" for key, value, ok, valid in checks if not ok] + fsdp_problems


def validate_trainer(cfg: Any, check_paths: bool = True) -> None:
    """Raise :class:`TrainerConfigError` (one line) when any ``trainer.*`` value is invalid.

    ``cuda``/``cuda:N`` is also checked against the CUDA devices this process can see.
    """
    problems = trainer_problems(cfg, check_paths)
    device = str(_get(cfg, "device"))
    if re.fullmatch(r"cuda(:\d+)?", device):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(device.partition(":")[2] or 0) >= count:
            have = f"this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "CUDA is not available"
            problems.append(f"trainer.device={device!r} is invalid: {have}; use auto or cpu")
    if problems:
        raise TrainerConfigError("; ".join(problems))
