"""Non-finite losses: skipped and counted; too many in a row stop the run with advice."""

from __future__ import annotations

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run

from framework.training import Engine, TrainingStopped


def _run(tmp_path, poison, **overrides):
    """Train; the micro-batch losses at the indices in ``poison`` are made NaN."""
    with Engine(make_cfg(**overrides), make_run(tmp_path)) as engine:
        model = engine.setup(TinyTask())
        stepped = []
        for i, batch in enumerate(engine.steps(engine.dataloader(NoisyRegression()))):
            loss = model(batch)["loss"]
            if i in poison:
                loss = loss * float("nan")
            stepped.append(engine.backward(loss))
        return engine, stepped


def test_nan_steps_are_skipped_and_counted(tmp_path):
    engine, stepped = _run(tmp_path, poison={2, 5}, max_steps=6)
    assert engine.state.bad_steps_total == 2 and engine.state.bad_steps_in_row == 0
    assert engine.state.step == 6
    assert stepped.count(False) == 2 and len(stepped) == 8
    for p in engine.task.parameters():
        assert torch.isfinite(p).all()


def test_nan_in_one_micro_batch_skips_the_whole_accumulated_step(tmp_path):
    engine, stepped = _run(tmp_path, poison={1}, max_steps=3, accumulate=2)
    assert stepped[:2] == [False, False]
    assert engine.state.bad_steps_total == 1


def test_too_many_in_a_row_stop_with_advice(tmp_path):
    with pytest.raises(TrainingStopped) as err:
        _run(tmp_path, poison={3, 4, 5}, max_steps=20, max_bad_steps=3)
    message = str(err.value)
    assert "3 non-finite losses in a row" in message and "step 3" in message
    assert "last finite loss" in message and "lower trainer.lr" in message and "fp32" in message
