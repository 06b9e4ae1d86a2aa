"""The training engine: device, precision, accumulation, schedules, checkpoints, resume, signals, DDP.

A modality's loop is written on :class:`Engine`; see :mod:`framework.training.engine` for the loop
it expects and :mod:`framework.training.checkpoint` for the checkpoint layout.
"""

from framework.training.checkpoint import export_weights, latest_checkpoint, load_model_weights
from framework.training.config import EarlyStoppingConfig, TrainerConfig
from framework.training.engine import Engine, EngineEvents, Interrupted, TrainingStopped, TrainState

__all__ = [
    "EarlyStoppingConfig",
    "Engine",
    "EngineEvents",
    "Interrupted",
    "TrainState",
    "TrainerConfig",
    "TrainingStopped",
    "export_weights",
    "latest_checkpoint",
    "load_model_weights",
]
