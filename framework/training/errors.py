"""Why training stops early: the exceptions the engine and its parts raise."""

from __future__ import annotations

from pathlib import Path

from framework.errors import FrameworkError


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
