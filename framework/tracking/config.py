"""The ``tracking:`` config node: which backends observe a run, and where they write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

BACKENDS = ("jsonl", "mlflow", "tensorboard", "wandb")


@dataclass
class MlflowConfig:
    """MLflow backend settings.

    ``tracking_uri: null`` means ``sqlite:///<launch dir>/mlflow.db``: an explicit SQLite store that
    several sweep jobs can share (see ``mlflow ui --backend-store-uri sqlite:///mlflow.db``).
    """

    tracking_uri: Optional[str] = None
    experiment: str = "framework"


@dataclass
class TensorBoardConfig:
    """TensorBoard backend settings; ``log_dir: null`` means ``<run_dir>/tensorboard``."""

    log_dir: Optional[str] = None


@dataclass
class WandbConfig:
    """Weights & Biases backend settings.

    ``mode: null`` leaves the choice to wandb (``WANDB_MODE``, ``wandb login``); ``offline`` never
    touches the network (``wandb sync <dir>/wandb/offline-run-*`` uploads later). ``dir: null``
    means the run dir (the W&B files go to ``<run_dir>/wandb/``). ``entity: null`` is the logged-in
    user's default.
    """

    project: str = "framework"
    entity: Optional[str] = None
    mode: Optional[str] = None
    dir: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class TrackingConfig:
    """Tracking backends for a run: any of ``jsonl``, ``mlflow``, ``tensorboard``, ``wandb``.

    ``metrics.jsonl`` in the run dir is always written by the engine; the ``jsonl`` backend adds
    the run's start and end (status, final metrics) and the evaluate stage's non-``val`` splits.
    """

    backends: list[str] = field(default_factory=lambda: ["jsonl"])
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
