"""Tracking backends (JSONL, MLflow, TensorBoard) as run-event observers, and run comparison.

Backends are plugin objects built by :func:`open_trackers`; heavy libraries (mlflow, tensorboard)
are imported only when a backend is created.
"""

from framework.tracking.compare import compare_runs
from framework.tracking.config import MlflowConfig, TensorBoardConfig, TrackingConfig
from framework.tracking.trackers import open_trackers

__all__ = ["MlflowConfig", "TensorBoardConfig", "TrackingConfig", "compare_runs", "open_trackers"]
