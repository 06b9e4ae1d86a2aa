"""Tracking backends observe a real (tiny) training run through pluggy; compare_runs reports diffs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

import pluggy
import pytest
import torch
from torch import nn

from framework import hookspecs
from framework.hookspecs import RunInfo
from framework.tracking import TrackingConfig, compare_runs, open_trackers
from framework.tracking.config import MlflowConfig
from framework.training import Engine, TrainerConfig


class HookEvents:
    """The lead's facade in miniature: engine events forwarded to pluggy hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.hook = pm.hook

    def step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        self.hook.framework_step(run=run, step=step, metrics=metrics)

    def evaluated(self, run: RunInfo, step: int, split: str, metrics: Mapping[str, float]) -> None:
        self.hook.framework_evaluated(run=run, step=step, split=split, metrics=metrics)

    def checkpoint_saved(self, run: RunInfo, step: int, path: Path) -> None:
        self.hook.framework_checkpoint_saved(run=run, step=step, path=path)


def _run(run_dir: Path, tracking: TrackingConfig, base_dir: Path, lr: float) -> list[Any]:
    config_yaml = f"trainer:\n  lr: {lr}\n  epochs: 2\nmodel:\n  name: linear\n"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(config_yaml)
    run = RunInfo(run_dir=run_dir, modality="toy", name=f"lr={lr}", config_yaml=config_yaml)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    trackers = open_trackers(tracking, run, base_dir)
    for tracker in trackers:
        pm.register(tracker)
    pm.check_pending()
    pm.hook.framework_run_start(run=run)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)  # (32, 1)
    data = [{"x": x[i], "y": 3 * x[i]} for i in range(32)]
    cfg = TrainerConfig(device="cpu", epochs=2, batch_size=8, lr=lr, log_every=2, progress=False)
    with Engine(cfg, run, HookEvents(pm)) as engine:
        model = engine.setup(nn.Linear(1, 1))

        def validate() -> dict[str, float]:
            return {"val_loss": float(nn.functional.mse_loss(model(x), 3 * x))}

        for batch in engine.steps(engine.dataloader(data), validate=validate):
            engine.backward(nn.functional.mse_loss(model(batch["x"]), batch["y"]))
    pm.hook.framework_evaluated(run=run, step=engine.state.step, split="test", metrics={"mse": 0.5})
    pm.hook.framework_run_end(run=run, status="completed", metrics={"test_mse": 0.5})
    return trackers


@pytest.mark.slow
def test_mlflow_and_tensorboard(tmp_path):
    tracking = TrackingConfig(backends=["jsonl", "mlflow", "tensorboard"],
                              mlflow=MlflowConfig(experiment="unit"))
    _run(tmp_path / "run", tracking, tmp_path, lr=0.1)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("unit").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["trainer.lr"] == "0.1" and found.data.params["model.name"] == "linear"
    assert found.data.tags["modality"] == "toy" and found.data.tags["run_dir"] == str(tmp_path / "run")
    assert found.data.tags["last_checkpoint"].endswith("step_00000008")
    history = client.get_metric_history(found.info.run_id, "train/loss")
    assert [m.step for m in history] == [2, 4, 6, 8]
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val/loss")] == [4, 8]
    assert "val/train_loss" in found.data.metrics and found.data.metrics["test/mse"] == 0.5
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "eval" in kinds and kinds.count("val") == 2


def test_non_main_ranks_get_no_backends_and_names_are_checked(tmp_path):
    run = RunInfo(run_dir=tmp_path, modality="toy", name="r", config_yaml="", rank=1, world_size=2)
    assert open_trackers(TrackingConfig(backends=["mlflow", "tensorboard"]), run, tmp_path) == []
    with pytest.raises(ValueError, match="jsonl, mlflow, tensorboard"):
        open_trackers(TrackingConfig(backends=["wandb"]), run, tmp_path)


def test_compare_runs(tmp_path):
    _run(tmp_path / "a", TrackingConfig(), tmp_path, lr=0.1)
    _run(tmp_path / "b", TrackingConfig(), tmp_path, lr=0.01)
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    assert "| `trainer.lr` | 0.1 | 0.01 |" in report
    assert "model.name" not in report  # equal keys are not listed
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| `")}
    assert {"`train/loss`", "`val/val_loss`", "`test/mse`", "`train/lr`"} <= set(rows)
    assert rows["`test/mse`"].count("0.5") == 4 and "+0 " in rows["`test/mse`"]


def test_import_framework_tracking_stays_light():
    code = "import sys, framework.tracking; print('mlflow' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_tracking_mlflow_records_a_real_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from framework.testing import run_framework

    run_dir = tmp_path / "run"
    result = run_framework(["+modality=tabular", "tracking=mlflow", "stages=[train,evaluate]",
                            "trainer.max_steps=20", "trainer.log_every=5", "trainer.lr=0.004"], run_dir)
    assert result.status == "completed"
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")  # the launch dir's store
    (found,) = client.search_runs([client.get_experiment_by_name("framework").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["trainer.lr"] == "0.004" and found.data.tags["modality"] == "tabular"
    assert found.data.tags["last_checkpoint"].endswith("step_00000020")
    assert [m.step for m in client.get_metric_history(found.info.run_id, "train/loss")] == [5, 10, 15, 20]
    assert found.data.metrics["final/accuracy"] == pytest.approx(result.metrics["accuracy"])
