"""Sweep jobs log to one MLflow SQLite store at the same time, from a store that does not exist yet."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from framework.hookspecs import RunInfo
from framework.tracking import MlflowConfig
from framework.tracking.mlflow_tracker import MlflowTracker

JOBS, STEPS = 3, 15


def _job(index: int, base_dir: str, start: "mp.synchronize.Barrier") -> None:  # type: ignore[name-defined]
    run = RunInfo(run_dir=Path(base_dir) / f"job{index}", modality="toy", name=f"job{index}",
                  config_yaml=f"trainer:\n  lr: {index}\n")
    tracker = MlflowTracker(MlflowConfig(experiment="sweep"), run, Path(base_dir))
    start.wait()  # every job creates the schema, the experiment and its run at once
    tracker.framework_run_start(run)
    for step in range(1, STEPS + 1):
        tracker.framework_step(run, step, {"loss": 1.0 / step})
    tracker.framework_run_end(run, "completed", {"accuracy": 0.5 + index / 10})


@pytest.mark.slow
def test_concurrent_jobs_share_one_store(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(JOBS)
    procs = [ctx.Process(target=_job, args=(i, str(tmp_path), start)) for i in range(JOBS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * JOBS

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name == "sweep"]
    assert len(experiments) == 1  # created once, although every job tried
    runs = client.search_runs([experiments[0].experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"job{i}" for i in range(JOBS)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "train/loss")) == STEPS
