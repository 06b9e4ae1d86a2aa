"""The ``trainer:`` config node: everything the engine needs, nothing a modality owns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


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
    num_workers: int = 0  # DataLoader workers
    log_every: int = 10  # optimizer steps between step-metric events
    eval_every: int = 0  # optimizer steps between validations; 0 = once per epoch
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 2  # newest N step checkpoints kept on disk
    resume: str = "auto"  # auto (newest valid in the run dir) | never | a checkpoint directory
    max_bad_steps: int = 5  # non-finite losses in a row before the run stops
    progress: bool = True  # progress bar on the main process
    ema_decay: Optional[float] = None  # e.g. 0.999 keeps an exponential moving average of the weights
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
