"""The ``mlflow`` backend: one MLflow run per framework run, in an explicit SQLite store.

mlflow is imported when the tracker is created, never by ``import framework``. Every call goes
through :func:`_retry`, because sweep jobs share one SQLite file and SQLite answers "database is
locked" (or, while the first job creates the schema, "already exists") to concurrent writers.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import yaml

from framework.config_tree import flatten
from framework.hookspecs import RunInfo, hookimpl
from framework.tracking.config import MlflowConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT = ("database is locked", "already exists", "unique constraint", "database table is locked")
_STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "failed": "FAILED", "refused": "FAILED"}
_MAX_PARAM_LEN = 6000  # MLflow's limit on a param value
RUN_ID_FILE = "mlflow_run.json"  # in the run dir: the MLflow run a resumed run reopens


def _retry(fn: Callable[..., T], *args: Any, attempts: int = 8, **kwargs: Any) -> T:
    """Call ``fn``; on a transient SQLite error wait (exponential backoff with jitter) and retry."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # mlflow wraps sqlalchemy's OperationalError in several types
            if attempt == attempts - 1 or not any(t in str(err).lower() for t in _TRANSIENT):
                raise
            time.sleep(min(5.0, 0.05 * 2**attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold ``<db>.lock`` beside a SQLite store while the schema may be created.

    MLflow migrates a new SQLite store on first access; two processes migrating at once leave it
    half-built (alembic's "expected to match one row"), which no retry repairs. Other stores need
    no lock.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    with FileLock(uri[len("sqlite:///"):] + ".lock", timeout=300):
        yield


def default_tracking_uri(base_dir: Path) -> str:
    """``sqlite:///<base_dir>/mlflow.db`` (absolute path)."""
    return f"sqlite:///{(Path(base_dir) / 'mlflow.db').resolve()}"


def metric_key(split: str, key: str) -> str:
    """``("val", "val_loss") -> "val/loss"``; ``("val", "train_loss") -> "val/train_loss"``."""
    return f"{split}/{key[len(split) + 1:] if key.startswith(split + '_') else key}"


class MlflowTracker:
    """Logs params (the flattened resolved config), step metrics, evaluations and tags to MLflow.

    Args:
        cfg: The ``tracking.mlflow`` node.
        run: The run being tracked.
        base_dir: The directory the user launched from (holds the default ``mlflow.db``).
    """

    def __init__(self, cfg: MlflowConfig, run: RunInfo, base_dir: Path) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = cfg.tracking_uri or default_tracking_uri(base_dir)
        with _store_lock(self.uri):  # building the client creates (migrates) a new store
            self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_name = cfg.experiment
        self.artifact_location = (Path(base_dir) / "mlartifacts").resolve().as_uri()
        self.run_id: str | None = None

    def _experiment_id(self) -> str:
        # Two jobs may both see no experiment and both create it: the loser reads the winner's.
        found = _retry(self.client.get_experiment_by_name, self.experiment_name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
        except Exception:
            found = _retry(self.client.get_experiment_by_name, self.experiment_name)
            if found is None:
                raise
            return found.experiment_id

    def _log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        if self.run_id and metrics:
            _retry(self.client.log_batch, self.run_id, metrics=metrics)

    def _reopen(self, run: RunInfo) -> str | None:
        """The MLflow run this run dir already has (kept in ``mlflow_run.json``), marked RUNNING again."""
        import json

        path = Path(run.run_dir) / RUN_ID_FILE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("tracking_uri") != self.uri or not record.get("run_id"):
            return None
        try:
            _retry(self.client.get_run, record["run_id"])
        except Exception:  # noqa: BLE001 - deleted from the store: start a new MLflow run
            log.warning("MLflow run %s named in %s is not in %s; starting a new one", record["run_id"], path, self.uri)
            return None
        _retry(self.client.update_run, record["run_id"], status="RUNNING")
        return str(record["run_id"])

    @hookimpl
    def framework_run_start(self, run: RunInfo) -> None:
        from mlflow.entities import Param

        from framework.atomic import atomic_write_json

        reopened = self._reopen(run)
        if reopened is not None:  # a resumed run continues its MLflow run (params were logged then)
            self.run_id = reopened
            log.info("MLflow: continuing run %s", reopened)
            return
        tags = {"modality": run.modality, "run_dir": str(run.run_dir), "world_size": str(run.world_size)}
        with _store_lock(self.uri):  # one process at a time creates the experiment
            experiment_id = _retry(self._experiment_id)
            created = _retry(self.client.create_run, experiment_id, run_name=run.name, tags=tags)
        self.run_id = created.info.run_id
        atomic_write_json(Path(run.run_dir) / RUN_ID_FILE, {"tracking_uri": self.uri, "run_id": self.run_id})
        params = [Param(k, v[:_MAX_PARAM_LEN]) for k, v in flatten(yaml.safe_load(run.config_yaml) or {}).items()]
        for start in range(0, len(params), 100):  # MLflow accepts at most 100 params per batch
            _retry(self.client.log_batch, self.run_id, params=params[start : start + 100])

    @hookimpl
    def framework_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        self._log_metrics(step, {metric_key("train", k): v for k, v in metrics.items()})

    @hookimpl
    def framework_evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        self._log_metrics(step, {metric_key(split, k): v for k, v in metrics.items()})

    @hookimpl
    def framework_checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        if self.run_id:
            _retry(self.client.set_tag, self.run_id, "last_checkpoint", str(path))

    @hookimpl
    def framework_run_end(self, run: RunInfo, status: str, metrics: Mapping[str, float]) -> None:
        if not self.run_id:
            return
        self._log_metrics(0, {f"final/{k}": v for k, v in metrics.items()})
        _retry(self.client.set_terminated, self.run_id, status=_STATUS.get(status, "FAILED"))
