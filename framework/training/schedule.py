"""Learning-rate schedules as pure functions of the optimizer step (nanoGPT's ``get_lr`` style).

A pure function needs no state of its own in a checkpoint: the step is the whole state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from framework.training.config import SCHEDULES  # one list, validated up front there


@dataclass(frozen=True)
class Schedule:
    """Linear warmup to ``1.0``, then a decay to ``min_ratio`` by ``total_steps``.

    Attributes:
        total_steps: Optimizer steps in the run.
        warmup_steps: Steps of linear warmup; during warmup the factor is ``(step + 1) / warmup``,
            so the first step already trains and step ``warmup - 1`` reaches the full rate.
        kind: ``cosine``, ``linear`` or ``constant`` (the shape after warmup).
        min_ratio: The final factor, as a fraction of the base learning rate.
    """

    total_steps: int
    warmup_steps: int = 0
    kind: str = "cosine"
    min_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"trainer.schedule={self.kind!r} is unknown; use one of {', '.join(SCHEDULES)}")

    @classmethod
    def from_ratio(cls, total_steps: int, warmup_ratio: float, kind: str, min_ratio: float) -> "Schedule":
        """Build with ``warmup_steps = round(warmup_ratio * total_steps)``."""
        return cls(total_steps, int(round(warmup_ratio * total_steps)), kind, min_ratio)

    def factor(self, step: int) -> float:
        """The multiplier of the base learning rate for optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        if self.kind == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def get_lr(step: int, base_lr: float, schedule: Schedule) -> float:
    """The learning rate at ``step``: ``base_lr * schedule.factor(step)``."""
    return base_lr * schedule.factor(step)
