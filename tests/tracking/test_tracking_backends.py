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
    with pytest.raises(ValueError, match="jsonl, mlflow, tensorboard, wandb"):
        open_trackers(TrackingConfig(backends=["neptune"]), run, tmp_path)


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


def _wandb_records(run_file: Path) -> list[Any]:
    """The protobuf records of an offline W&B run file (``run-<id>.wandb``: a 7-byte header, then
    LevelDB-log records of up to 32 KiB blocks, each ``crc32c, length, type`` and data)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, chunk, out = run_file.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = chunk + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)  # "train/loss" may come as nested keys


def _wandb_history(run_file: Path) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """``(run id, history rows, last summary values)`` of an offline W&B run file."""
    run_id, rows, summary = "", [], {}
    for record in _wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id = record.run.run_id
        elif kind == "history":
            rows.append({_item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({_item_key(item): json.loads(item.value_json) for item in record.summary.update})
    return run_id, rows, summary


@pytest.mark.slow
def test_wandb_offline_logs_a_run_and_a_resume_continues_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="tracking=wandb needs wandb (pip install 'framework[wandb]')")
    from framework.tracking.config import WandbConfig
    from framework.tracking.wandb_tracker import RUN_ID_FILE, WandbTracker

    monkeypatch.setenv("WANDB_MODE", "offline")  # no network, no account
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb_home"))
    run_dir = tmp_path / "run"
    _run(run_dir, TrackingConfig(backends=["jsonl", "wandb"]), tmp_path, lr=0.1)
    import wandb

    wandb.teardown()  # the service process writes the run file; stopping it, as a process exit does, flushes it
    stored = json.loads((run_dir / RUN_ID_FILE).read_text())["run_id"]
    (first,) = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    run_id, rows, summary = _wandb_history(first)
    assert run_id == stored and first.name == f"run-{stored}.wandb"
    assert [r["_step"] for r in rows if "train/loss" in r] == [2, 4, 6, 8]
    assert [r["_step"] for r in rows if "val/loss" in r] == [4, 8]
    assert rows[-1]["test/mse"] == 0.5 and rows[-1]["_step"] == 8  # evaluations at the last step
    assert summary["final/test_mse"] == 0.5 and summary["status"] == "completed"
    assert summary["last_checkpoint"].endswith("step_00000008") and summary["modality"] == "toy"

    # A resumed framework run (same run dir) reopens that W&B run and continues its steps.
    info = RunInfo(run_dir=run_dir, modality="toy", name="resumed", config_yaml="trainer: {lr: 0.1}\n")
    tracker = WandbTracker(WandbConfig(), info)
    tracker.framework_run_start(run=info)
    tracker.framework_step(run=info, step=10, metrics={"loss": 0.25})
    tracker.framework_run_end(run=info, status="completed", metrics={})
    wandb.teardown()
    second = [p for p in run_dir.glob("wandb/offline-run-*/run-*.wandb") if p != first]
    assert len(second) == 1 and second[0].name == f"run-{stored}.wandb"
    run_id, rows, _ = _wandb_history(second[0])
    assert run_id == stored and [(r["_step"], r["train/loss"]) for r in rows] == [(10, 0.25)]


def test_tracking_wandb_config_group_composes() -> None:
    from framework.testing import compose

    cfg = compose(["+modality=tabular", "tracking=wandb", "tracking.wandb.mode=offline", "tracking.wandb.tags=[a]"])
    assert list(cfg.tracking.backends) == ["jsonl", "wandb"]
    assert cfg.tracking.wandb.project == "framework" and cfg.tracking.wandb.mode == "offline"
    assert list(cfg.tracking.wandb.tags) == ["a"]
