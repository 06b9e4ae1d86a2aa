"""The metric logger alone: windows, metrics.jsonl rows, events, progress on a terminal and in a log
file; and the deprecated framework.training.monitor name."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_toy import NoisyRegression, Recorder, TinyTask, make_cfg, make_run, train_losses

from framework.training import Engine
from framework.training.metric_logger import MetricLogger, Progress


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_skipped_group_leaves_no_trace_and_rows_average_the_taken_steps(tmp_path: Path) -> None:
    rec = Recorder()
    logger = MetricLogger(make_run(tmp_path), rec, is_main=True, world_size=2, log_every=2, progress=False)
    logger.start(total=4, initial=0)
    logger.micro_batch(torch.tensor(1.0), {"acc": torch.tensor(0.5), "tokens": 10, "image": torch.zeros(3)}, items=4)
    logger.step_taken(1)
    logger.micro_batch(torch.tensor(float("nan")), {"acc": 0.0}, items=4)
    logger.step_skipped()
    logger.micro_batch(torch.tensor(3.0), {"loss": torch.tensor(99.0), "acc": 1.0, "tokens": 30}, items=4)
    logger.grad_norm(torch.tensor(2.0))
    logger.step_taken(2)
    assert logger.is_log_step(2) and not logger.is_log_step(3)
    logger.train(2, epoch=0, lr=0.5)
    (step, metrics), = rec.steps
    assert step == 2 and metrics["loss"] == 2.0 and metrics["acc"] == 0.75 and metrics["grad_norm"] == 2.0
    assert metrics["lr"] == 0.5 and "image" not in metrics
    assert metrics["items_per_s"] > 0 and metrics["tokens_per_s"] == pytest.approx(metrics["items_per_s"] * 40 / 12)
    assert logger.last_finite is not None and float(logger.last_finite.mean_tensor("loss")) == 3.0
    assert logger.validation(2, 0, {"val_loss": 1.5}) == 2.0  # the train loss since the last validation
    logger.checkpoint(2, tmp_path / "ckpt")
    assert [r["kind"] for r in _rows(tmp_path)] == ["train", "val", "checkpoint"]
    assert rec.evals == [(2, "val", {"val_loss": 1.5, "train_loss": 2.0})] and rec.checkpoints == [(2, tmp_path / "ckpt")]


def test_other_ranks_pop_their_windows_but_write_nothing(tmp_path: Path) -> None:
    rec = Recorder()
    logger = MetricLogger(make_run(tmp_path), rec, is_main=False, world_size=2, log_every=1, progress=True)
    logger.start(total=2, initial=0)
    assert logger.progress is None  # progress on the main process only
    logger.micro_batch(torch.tensor(1.0), None, items=1)
    logger.step_taken(1)
    logger.train(1, 0, 0.1)
    logger.checkpoint(1, tmp_path)
    assert not logger.window and rec.steps == [] and rec.checkpoints == []
    assert not (tmp_path / "metrics.jsonl").exists()


def test_progress_in_a_log_file_is_plain_lines_at_a_limited_rate(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()  # not a terminal
    with caplog.at_level(logging.INFO, logger="framework.training.metric_logger"):
        throttled = Progress(total=100, initial=0, stream=stream, min_interval_s=3600)
        assert not throttled.interactive
        for step in range(10, 101, 10):
            throttled.advance()
            throttled.show(step, {"loss": 0.5, "items_per_s": 800.0})
        every = Progress(total=100, initial=50, stream=stream, min_interval_s=0)
        for step in (60, 70):
            every.show(step, {"loss": 0.25, "items_per_s": 10.0})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and throttled.lines == 2 and every.lines == 2  # first and last; then every call
    assert lines[0].startswith("step 10/100 (10%) loss 0.5, 800 items/s") and "left" in lines[0]
    assert lines[1].startswith("step 100/100 (100%)") and "left" not in lines[1]
    assert lines[3].startswith("step 70/100 (70%) loss 0.25")
    assert stream.getvalue() == ""  # nothing drawn: no carriage returns in a log file


def test_progress_on_a_terminal_is_a_bar_and_no_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="framework.training.metric_logger"):
        bar = Progress(total=5, initial=0, stream=stream, interactive=True, min_interval_s=0)
        for step in range(1, 6):
            bar.advance()
            bar.show(step, {"loss": 0.5, "items_per_s": 10.0})
        drawn = bar._bar
        assert drawn is not None and drawn.n == 5 and drawn.postfix == "items_s=10, loss=0.5"
        bar.close()
        bar.close()  # idempotent
    assert "\r" in stream.getvalue() and "/5" in stream.getvalue()
    assert caplog.records == [] and bar.lines == 0


def test_a_training_run_with_stderr_redirected_logs_lines_not_a_bar(tmp_path: Path, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    assert not sys.stderr.isatty()  # pytest captures stderr
    with caplog.at_level(logging.INFO, logger="framework.training.metric_logger"):
        with Engine(make_cfg(max_steps=4, progress=True, log_every=2), make_run(tmp_path)) as engine:
            train_losses(engine, TinyTask(), NoisyRegression())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines and lines[-1].startswith("step 4/4 (100%)")
    assert "\r" not in capsys.readouterr().err


def test_the_old_module_name_still_imports_with_a_deprecation_warning() -> None:
    from framework.training import metric_logger

    sys.modules.pop("framework.training.monitor", None)
    with pytest.warns(DeprecationWarning, match="framework.training.metric_logger"):
        monitor = importlib.import_module("framework.training.monitor")
    assert monitor.MetricsFile is metric_logger.MetricsFile and monitor.EarlyStopper is metric_logger.EarlyStopper


class _Guessing(torch.nn.Module):
    """A 3-class classifier of NoisyRegression's inputs that declares its chance loss; with
    ``learns=False`` its logits are all zero, so its loss is exactly ln(3) whatever the lr."""

    def __init__(self, learns: bool) -> None:
        super().__init__()
        self.head = torch.nn.Linear(4, 3)
        self.learns = learns

    def forward(self, batch):  # type: ignore[no-untyped-def]
        from framework import CHANCE_LOSS

        logits = self.head(batch["x"]) * (1.0 if self.learns else 0.0)  # (B, 3)
        target = (batch["y"] > 0.5).long() + (batch["y"] > 3.0).long()  # (B,)
        return {"loss": torch.nn.functional.cross_entropy(logits, target), CHANCE_LOSS: float(np.log(3))}


@pytest.mark.parametrize("learns", [False, True])
def test_a_loss_that_sits_at_its_chance_value_after_warm_up_is_reported_once(tmp_path: Path, caplog, learns) -> None:
    with caplog.at_level(logging.WARNING, logger="framework.training.metric_logger"):
        with Engine(make_cfg(max_steps=12, warmup_ratio=0.25, lr=0.1), make_run(tmp_path)) as engine:
            train_losses(engine, _Guessing(learns), NoisyRegression(n=64))
    warnings = [r.getMessage() for r in caplog.records if "chance value" in r.getMessage()]
    if learns:
        assert warnings == []
    else:
        assert len(warnings) == 1 and "at step 6 (" in warnings[0] and "trainer.lr" in warnings[0]  # warm-up: 3 steps
    assert "chance_loss" in next(r for r in _rows(tmp_path) if r["kind"] == "train")["metrics"]
