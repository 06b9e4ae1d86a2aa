"""Build the tracking backends a config asks for, as plugin objects observing run events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.hookspecs import RunInfo
from framework.tracking.config import BACKENDS, TrackingConfig


def open_trackers(cfg: TrackingConfig, run: RunInfo, base_dir: Path) -> list[Any]:
    """Return one plugin object per configured backend (none on ranks other than 0).

    Register the objects with the plugin manager for the run's duration; they implement
    ``framework_run_start``/``step``/``evaluated``/``checkpoint_saved``/``run_end``.

    Args:
        cfg: The ``tracking:`` node (a dataclass or an equivalent OmegaConf node).
        run: The run being tracked.
        base_dir: The directory the user launched from (default home of ``mlflow.db``).

    Raises:
        ValueError: For a backend name that is not one of ``jsonl``, ``mlflow``, ``tensorboard``, ``wandb``.
    """
    unknown = [name for name in cfg.backends if name not in BACKENDS]
    if unknown:
        raise ValueError(f"tracking.backends has unknown {unknown}; valid backends are {', '.join(BACKENDS)}")
    if not run.is_main:
        return []
    trackers: list[Any] = []
    for name in cfg.backends:
        if name == "jsonl":
            from framework.tracking.jsonl_tracker import JsonlTracker

            trackers.append(JsonlTracker(run))
        elif name == "mlflow":
            from framework.tracking.mlflow_tracker import MlflowTracker

            trackers.append(MlflowTracker(cfg.mlflow, run, Path(base_dir)))
        elif name == "tensorboard":
            from framework.tracking.tensorboard_tracker import TensorBoardTracker

            trackers.append(TensorBoardTracker(cfg.tensorboard, run))
        else:
            from framework.tracking.wandb_tracker import WandbTracker

            trackers.append(WandbTracker(cfg.wandb, run))
    return trackers
