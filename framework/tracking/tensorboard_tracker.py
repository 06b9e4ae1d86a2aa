"""The ``tensorboard`` backend: scalars under ``train/*`` and ``<split>/*``, the config as text."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from framework.hookspecs import RunInfo, hookimpl
from framework.tracking.config import TensorBoardConfig
from framework.tracking.mlflow_tracker import metric_key


class TensorBoardTracker:
    """Writes event files to ``cfg.log_dir`` (default ``<run_dir>/tensorboard``)."""

    def __init__(self, cfg: TensorBoardConfig, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(cfg.log_dir) if cfg.log_dir else Path(run.run_dir) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    @hookimpl
    def framework_run_start(self, run: RunInfo) -> None:
        # Markdown code block, so TensorBoard's text tab keeps the YAML's indentation.
        self.writer.add_text("config", "```\n" + run.config_yaml + "\n```", 0)

    @hookimpl
    def framework_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(metric_key("train", key), float(value), step)

    @hookimpl
    def framework_evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(metric_key(split, key), float(value), step)
        self.writer.flush()

    @hookimpl
    def framework_run_end(self, run: RunInfo, status: str, metrics: Mapping[str, float]) -> None:
        self.writer.add_text("status", status, 0)
        self.writer.close()
