"""Validation during training: train and val loss side by side, overfitting warning, early stopping."""

from __future__ import annotations

import json
import logging

import torch
from engine_toy import NoisyRegression, Recorder, TinyTask, make_cfg, make_run, train_losses

from framework.training import EarlyStoppingConfig, Engine
from framework.training.metric_logger import OverfitWatch


def _scripted(values, model_ref):
    """A validate() returning the scripted val losses in turn; records the model mode it saw."""
    seen = []

    def validate():
        model = model_ref()
        seen.append((model.training, torch.is_grad_enabled()))
        return {"val_loss": values[len(seen) - 1], "val_acc": 0.5}

    return validate, seen


def test_val_and_train_loss_logged_together(tmp_path):
    rec = Recorder()
    with Engine(make_cfg(epochs=3, lr=0.05), make_run(tmp_path), rec) as engine:
        validate, seen = _scripted([3.0, 2.0, 1.0], lambda: engine.model)
        train_losses(engine, TinyTask(dropout=0.0), NoisyRegression(), validate=validate)
        assert engine.model.training  # put back in train mode
    assert seen == [(False, False)] * 3  # eval mode, no grad
    assert [(step, split) for step, split, _ in rec.evals] == [(6, "val"), (12, "val"), (18, "val")]
    assert all({"val_loss", "val_acc", "train_loss"} <= set(m) for _, _, m in rec.evals)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val_rows = [r for r in rows if r["kind"] == "val"]
    assert [r["metrics"]["val_loss"] for r in val_rows] == [3.0, 2.0, 1.0]
    assert {r["kind"] for r in rows} == {"train", "val", "checkpoint"}


def test_eval_every_steps(tmp_path):
    rec = Recorder()
    with Engine(make_cfg(max_steps=10, eval_every=4), make_run(tmp_path), rec) as engine:
        train_losses(engine, TinyTask(), NoisyRegression(), validate=lambda: {"val_loss": 1.0})
    assert [step for step, _, _ in rec.evals] == [4, 8]


def test_overfitting_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="framework.training"):
        with Engine(make_cfg(epochs=4, lr=0.05), make_run(tmp_path)) as engine:
            validate, _ = _scripted([1.0, 0.9, 1.1, 1.3], lambda: engine.model)
            train_losses(engine, TinyTask(dropout=0.0), NoisyRegression(), validate=validate)
    warnings = [r.getMessage() for r in caplog.records if "overfitting" in r.getMessage()]
    assert len(warnings) == 1 and "step 24" in warnings[0]


def test_overfit_watch_needs_both_trends():
    watch = OverfitWatch(window=2)
    assert not any(watch.observe(i, t, v) for i, (t, v) in enumerate([(3, 1), (2, 2), (2.5, 3)]))  # train rose
    assert watch.observe(3, 2.0, 4.0) is False  # train 2.5 -> 2.0 fell, but 2 -> 2.5 rose before
    assert watch.observe(4, 1.5, 5.0) is True


def test_early_stopping(tmp_path):
    cfg = make_cfg(epochs=10, early_stopping=EarlyStoppingConfig("val_loss", "min", patience=2, min_delta=0.1))
    rec = Recorder()
    with Engine(cfg, make_run(tmp_path), rec) as engine:
        validate, _ = _scripted([1.0, 0.95, 0.5, 0.45, 0.44] + [0.0] * 5, lambda: engine.model)
        train_losses(engine, TinyTask(), NoisyRegression(), validate=validate)
    assert engine.state.step == 5 * 6  # stopped after the 5th evaluation, not after 10 epochs
    assert rec.checkpoints[-1][0] == 30  # the final checkpoint is still written
