"""The ``wandb`` backend: one Weights & Biases run per framework run, resumable, offline-ready.

wandb is imported when the tracker is created, never by ``import framework``. The W&B run's id is
kept in ``RUN_DIR/wandb_run.json``, so a resumed framework run reopens the same W&B run
(``wandb.init(id=..., resume="allow")``) instead of starting a second one. With
``WANDB_MODE=offline`` (or ``tracking.wandb.mode=offline``) nothing touches the network: the run
is written under ``<dir>/wandb/offline-run-*`` and ``wandb sync`` uploads it later.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import yaml

from framework.hookspecs import RunInfo, hookimpl
from framework.tracking.config import WandbConfig
from framework.tracking.mlflow_tracker import metric_key

log = logging.getLogger(__name__)

RUN_ID_FILE = "wandb_run.json"  # in the run dir: the W&B run a resumed run reopens
_EXIT_CODES = {"completed": 0, "interrupted": 0}  # anything else finishes the W&B run as failed


def stored_run_id(run_dir: Path) -> str | None:
    """The W&B run id a run dir recorded (``wandb_run.json``), or ``None``."""
    try:
        record = json.loads((Path(run_dir) / RUN_ID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run_id = record.get("run_id") if isinstance(record, dict) else None
    return str(run_id) if run_id else None


class WandbTracker:
    """Logs the resolved config, step metrics, evaluations and the final figures to W&B.

    Args:
        cfg: The ``tracking.wandb`` node.
        run: The run being tracked.
    """

    def __init__(self, cfg: WandbConfig, run: RunInfo) -> None:
        try:
            import wandb
        except ImportError:
            from framework.errors import FrameworkError

            raise FrameworkError("tracking=wandb needs the wandb package: pip install 'framework[wandb]' "
                                 "(or choose tracking=jsonl, mlflow or tensorboard)") from None

        self.wandb = wandb
        self.cfg = cfg
        self.dir = Path(cfg.dir) if cfg.dir else Path(run.run_dir)
        self.run: Any = None
        self._last_step = 0

    def _log(self, step: int, values: Mapping[str, float]) -> None:
        if self.run is None or not values:
            return
        # W&B steps only grow; evaluations reported with step -1 go at the last training step.
        step = self._last_step if step < 0 else step
        self._last_step = max(self._last_step, step)
        self.run.log({k: float(v) for k, v in values.items()}, step=self._last_step)

    @hookimpl
    def framework_run_start(self, run: RunInfo) -> None:
        from framework.atomic import atomic_write_json

        resumed = stored_run_id(run.run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # A new run gets its id from wandb; a resumed one passes the stored id back.
        resume: dict[str, Any] = {"id": resumed, "resume": "allow"} if resumed else {}
        self.run = self.wandb.init(
            project=self.cfg.project, entity=self.cfg.entity, mode=self.cfg.mode, dir=str(self.dir), **resume,
            name=run.name, tags=list(self.cfg.tags) or None,
            config=yaml.safe_load(run.config_yaml) or {}, job_type=run.modality,
            settings=self.wandb.Settings(console="off", x_disable_stats=True),
        )
        self._last_step = int(getattr(self.run, "step", 0) or 0)
        if resumed is None:
            atomic_write_json(Path(run.run_dir) / RUN_ID_FILE, {"run_id": self.run.id, "project": self.cfg.project})
        else:
            log.info("W&B: continuing run %s", resumed)
        self.run.summary["modality"] = run.modality
        self.run.summary["run_dir"] = str(run.run_dir)

    @hookimpl
    def framework_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        self._log(step, {metric_key("train", k): v for k, v in metrics.items()})

    @hookimpl
    def framework_evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        self._log(step, {metric_key(split, k): v for k, v in metrics.items()})

    @hookimpl
    def framework_checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        if self.run is not None:
            self.run.summary["last_checkpoint"] = str(path)

    @hookimpl
    def framework_run_end(self, run: RunInfo, status: str, metrics: Mapping[str, float]) -> None:
        if self.run is None:
            return
        for key, value in metrics.items():
            self.run.summary[f"final/{key}"] = float(value)
        self.run.summary["status"] = status
        self.run.finish(exit_code=_EXIT_CODES.get(status, 1))
        self.run = None
