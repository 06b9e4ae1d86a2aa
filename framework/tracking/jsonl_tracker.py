"""The ``jsonl`` backend: run start/end and evaluate-stage results appended to ``metrics.jsonl``."""

from __future__ import annotations

from typing import Mapping

from framework.hookspecs import RunInfo, hookimpl
from framework.training.metric_logger import MetricsFile


class JsonlTracker:
    """Adds ``run_start``, ``run_end`` and ``eval`` records to the run's ``metrics.jsonl``.

    Train steps, periodic validation and checkpoints are written by the engine itself, so this
    tracker writes only the evaluate stage's results (reported with ``step=-1``; recorded at the
    last training step) and evaluations of splits other than ``val``.
    """

    def __init__(self, run: RunInfo) -> None:
        self.file = MetricsFile(run.run_dir / "metrics.jsonl")
        self._last_step = 0

    @hookimpl
    def framework_run_start(self, run: RunInfo) -> None:
        self.file.write(0, "run_start", {}, name=run.name, modality=run.modality)

    @hookimpl
    def framework_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        self._last_step = step

    @hookimpl
    def framework_evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        if step >= 0 and split == "val":  # periodic validation: the engine wrote this row
            self._last_step = max(self._last_step, step)
            return
        self.file.write(self._last_step if step < 0 else step, "eval", metrics, split=split)

    @hookimpl
    def framework_run_end(self, run: RunInfo, status: str, metrics: Mapping[str, float]) -> None:
        self.file.write(self._last_step, "run_end", metrics, status=status)
