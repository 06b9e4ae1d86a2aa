"""The listing and comparison commands, and run events reaching observers during a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework import hookimpl
from framework.plugins import load_plugins
from framework.testing import run_framework

FAST = ["trainer.max_steps=6", "trainer.log_every=2", "trainer.checkpoint_every=3"]


class EventLog:
    """An observer that appends every event it sees to a JSONL file (used by `_target_` below)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _write(self, **event: object) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(event, default=str) + "\n")

    @hookimpl
    def framework_run_start(self, run):  # type: ignore[no-untyped-def]
        self._write(event="start", modality=run.modality)

    @hookimpl
    def framework_step(self, run, step, metrics):  # type: ignore[no-untyped-def]
        self._write(event="step", step=step, keys=sorted(metrics))

    @hookimpl
    def framework_evaluated(self, run, step, split, metrics):  # type: ignore[no-untyped-def]
        self._write(event="evaluated", step=step, split=split, keys=sorted(metrics))

    @hookimpl
    def framework_checkpoint_saved(self, run, step, path):  # type: ignore[no-untyped-def]
        self._write(event="checkpoint", step=step, valid=(Path(path) / "manifest.json").is_file())

    @hookimpl
    def framework_run_end(self, run, status, metrics):  # type: ignore[no-untyped-def]
        self._write(event="end", status=status, accuracy=metrics.get("accuracy"))


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_run_event_reaches_an_installed_observer(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    plugins = load_plugins(extra=[EventLog(str(log))])
    run_framework(["+modality=tabular", *FAST, "trainer.eval_every=3"], tmp_path / "run", plugins=plugins)
    events = _events(log)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert [e["step"] for e in events if e["event"] == "step"] == [2, 4, 6]
    assert {"loss", "lr", "grad_norm", "items_per_s"} <= set(next(e for e in events if e["event"] == "step")["keys"])
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [3, 6]
    assert all(e["valid"] for e in events if e["event"] == "checkpoint")
    evaluated = [(e["split"], e["step"]) for e in events if e["event"] == "evaluated"]
    assert ("val", 3) in evaluated and ("test", -1) in evaluated  # periodic validation and the stage
    assert events[-1]["status"] == "completed" and events[-1]["accuracy"] is not None
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    stage = {row["split"]: row for row in rows if row["kind"] == "eval"}  # the evaluate stage, both splits
    assert set(stage) == {"val", "test"} and stage["val"]["step"] == 6 and "accuracy" in stage["val"]["metrics"]
    assert [row["step"] for row in rows if row["kind"] == "val"] == [3, 6]  # periodic validation, once each


def test_an_observer_named_by_target_in_config_receives_events(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    run_framework(["+modality=tabular", *FAST, "stages=[train]", "allowed_targets=[test_cli_and_events]",
                   "+callbacks.log._target_=test_cli_and_events.EventLog", f"+callbacks.log.path={log}"],
                  tmp_path / "run")
    kinds = {e["event"] for e in _events(log)}
    assert {"start", "step", "checkpoint", "end"} <= kinds


@pytest.mark.slow
def test_plugins_command_lists_plugins_and_modalities(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--plugins")
    assert result.returncode == 0, result.stderr
    assert "vision" in result.stdout and "framework-tabular" in result.stdout
    assert "modalities: tabular" in result.stdout


@pytest.mark.slow
def test_compare_command_shows_config_and_metric_differences(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name, lr in (("a", "0.001"), ("b", "0.01")):
        result = cli("+modality=tabular", "stages=[train,evaluate]", "trainer.max_steps=20", f"trainer.lr={lr}",
                     f"hydra.run.dir={name}", "evaluation.enforce_success=false")  # short runs: criteria may fail
        assert result.returncode == 0, result.stderr[-2000:]
    result = cli("--compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert "trainer.lr" in result.stdout and "0.001" in result.stdout and "0.01" in result.stdout
    assert "loss" in result.stdout
    assert "## Evaluation against the baseline (A)" in result.stdout and "| accuracy |" in result.stdout


def test_finding_every_modality_loads_no_model_library() -> None:
    """Listing the modalities (what every `python -m framework` does first) imports none of the
    libraries that take seconds to import (timm pulls in torchvision and torch._dynamo): they load
    when a run of that modality builds something. openai-whisper, a fifth of a second, may load."""
    import subprocess
    import sys

    heavy = ["timm", "torchvision", "albumentations", "transformers", "peft", "cv2"]
    code = ("import sys; from framework.plugins import load_plugins; "
            "names = sorted(load_plugins().modalities()); "
            f"print(names); print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    names, loaded = out.strip().splitlines()
    assert {"vision", "speech", "text", "alignment"} <= set(eval(names))
    assert loaded == "[]"
