"""The training engine: device, precision, accumulation, schedules, checkpoints, resume, signals, DDP.

A modality's loop is written on :class:`Engine`; see :mod:`framework.training.engine` for the loop
it expects and its parts (strategy, stepper, checkpointer, metric logger), and
:mod:`framework.training.checkpoint` for the checkpoint layout. :func:`load_trained_weights` loads a
checkpoint's or export's weights into a task.
"""

from framework.training.checkpoint import export_weights, latest_checkpoint, load_model_weights
from framework.training.checkpointer import load_trained_weights
from framework.training.config import EarlyStoppingConfig, TrainerConfig
from framework.training.engine import Engine, EngineEvents, Interrupted, ResumeRefused, TrainingStopped, TrainState

__all__ = [
    "EarlyStoppingConfig",
    "Engine",
    "EngineEvents",
    "Interrupted",
    "ResumeRefused",
    "TrainState",
    "TrainerConfig",
    "TrainingStopped",
    "export_weights",
    "latest_checkpoint",
    "load_model_weights",
    "load_trained_weights",
]
