"""Tracking backends (JSONL, MLflow, TensorBoard, W&B) as run-event observers, and run comparison.

Backends are plugin objects built by :func:`open_trackers`; heavy libraries (mlflow, tensorboard, wandb)
are imported only when a backend is created.
"""

from framework.tracking.compare import compare_runs
from framework.tracking.config import MlflowConfig, TensorBoardConfig, TrackingConfig, WandbConfig
from framework.tracking.trackers import open_trackers

__all__ = ["MlflowConfig", "TensorBoardConfig", "TrackingConfig", "WandbConfig", "compare_runs", "open_trackers"]
