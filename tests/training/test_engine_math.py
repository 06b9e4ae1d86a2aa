"""Accumulation equivalence, learning-rate schedules, clipping, weight decay groups, EMA."""

from __future__ import annotations

import math

import pytest
import torch
from engine_toy import NoisyRegression, Recorder, TinyTask, make_cfg, make_run, train_losses

from framework.training import Engine, latest_checkpoint, load_model_weights
from framework.training.schedule import Schedule, get_lr


class CleanRegression(NoisyRegression):
    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def _final_weights(tmp_path, batch_size: int, accumulate: int) -> dict[str, torch.Tensor]:
    cfg = make_cfg(batch_size=batch_size, accumulate=accumulate, epochs=2, clip_grad_norm=0.5)
    with Engine(cfg, make_run(tmp_path / f"b{batch_size}a{accumulate}"), seed=0) as engine:
        torch.manual_seed(0)
        model = engine.setup(TinyTask(dropout=0.0))
        for batch in engine.steps(engine.dataloader(CleanRegression(n=32), shuffle=False)):
            engine.backward(model(batch)["loss"])
        assert engine.state.step == 2 * 32 // 8
        return {k: v.clone() for k, v in engine.task.state_dict().items()}


def test_accumulation_matches_a_larger_batch(tmp_path):
    big = _final_weights(tmp_path, batch_size=8, accumulate=1)
    small = _final_weights(tmp_path, batch_size=4, accumulate=2)
    for key in big:
        torch.testing.assert_close(small[key], big[key], rtol=1e-5, atol=1e-6)


def test_short_last_group_still_steps(tmp_path):
    # 5 batches per epoch with accumulate=2 -> groups of 2, 2, 1 -> 3 steps per epoch.
    cfg = make_cfg(batch_size=8, accumulate=2, epochs=2)
    with Engine(cfg, make_run(tmp_path)) as engine:
        losses = train_losses(engine, TinyTask(), NoisyRegression(n=40))
    assert len(losses) == 10 and engine.state.step == 6 and engine.state.epoch == 2


def test_warmup_then_cosine():
    s = Schedule(total_steps=110, warmup_steps=10, kind="cosine", min_ratio=0.1)
    assert s.factor(0) == pytest.approx(0.1) and s.factor(9) == pytest.approx(1.0)
    assert s.factor(10) == pytest.approx(1.0)
    assert s.factor(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert s.factor(110) == pytest.approx(0.1) and s.factor(500) == pytest.approx(0.1)
    assert get_lr(60, 2e-3, s) == pytest.approx(2e-3 * 0.55)


def test_linear_and_constant():
    linear = Schedule(total_steps=100, warmup_steps=0, kind="linear")
    assert [linear.factor(i) for i in (0, 25, 100)] == pytest.approx([1.0, 0.75, 0.0])
    assert Schedule.from_ratio(100, 0.05, "constant", 0.0).warmup_steps == 5
    assert Schedule(100, 0, "constant").factor(99) == 1.0
    with pytest.raises(ValueError, match="cosine, linear, constant"):
        Schedule(10, 0, "step")


def test_engine_applies_the_schedule(tmp_path):
    rec = Recorder()
    cfg = make_cfg(max_steps=20, warmup_ratio=0.2, schedule="cosine", lr=1e-2)
    with Engine(cfg, make_run(tmp_path), rec) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    expected = Schedule.from_ratio(20, 0.2, "cosine", 0.0)
    for step, metrics in rec.steps:
        assert metrics["lr"] == pytest.approx(1e-2 * expected.factor(step - 1))


def test_clipping_bounds_the_applied_gradient(tmp_path):
    cfg = make_cfg(max_steps=5, clip_grad_norm=0.01, lr=1e-3)
    rec = Recorder()
    with Engine(cfg, make_run(tmp_path), rec) as engine:
        model = engine.setup(TinyTask())
        applied = []
        real_step = engine.optimizer.step

        def spy_step(*args, **kwargs):
            grads = [p.grad for p in engine.task.parameters() if p.grad is not None]
            applied.append(float(torch.nn.utils.get_total_norm(grads)))
            return real_step(*args, **kwargs)

        engine.optimizer.step = spy_step
        for batch in engine.steps(engine.dataloader(NoisyRegression())):
            engine.backward(model(batch)["loss"])
    assert len(applied) == 5 and max(applied) <= 0.01 * (1 + 1e-4)
    assert all(m["grad_norm"] > 0.01 for _, m in rec.steps)  # the logged norm is the pre-clip one


def test_weight_decay_only_on_matrices(tmp_path):
    with Engine(make_cfg(weight_decay=0.1), make_run(tmp_path)) as engine:
        engine.setup(TinyTask())
        groups = engine.optimizer.param_groups
    assert [(g["weight_decay"], sorted(p.ndim for p in g["params"])) for g in groups] == [(0.1, [2, 2]), (0.0, [1, 1])]


def test_ema_follows_the_weights(tmp_path):
    with Engine(make_cfg(max_steps=10, ema_decay=0.5), make_run(tmp_path)) as engine:
        model = engine.setup(TinyTask())
        start = engine.eval_model(model).net[0].weight.clone()
        for batch in engine.steps(engine.dataloader(NoisyRegression())):
            engine.backward(model(batch)["loss"])
        ema = engine.eval_model(model)
        assert ema is not engine.unwrap(model) and not ema.training
        # After training the task holds the averaged weights (what evaluate and export read)...
        assert torch.equal(engine.unwrap(model).net[0].weight, ema.net[0].weight)
        assert not torch.equal(ema.net[0].weight, start)
    # ...while the final checkpoint keeps the raw weights for resuming, and the EMA ones beside them.
    checkpoint = latest_checkpoint(tmp_path)
    raw, averaged = TinyTask(), TinyTask()
    assert load_model_weights(raw, checkpoint, prefer_ema=False) is False
    assert load_model_weights(averaged, checkpoint) is True
    assert torch.equal(averaged.net[0].weight, ema.net[0].weight)
    assert not torch.equal(raw.net[0].weight, averaged.net[0].weight)
    assert (averaged.net[0].weight - raw.net[0].weight).abs().max() < (start - raw.net[0].weight).abs().max()
    assert math.isfinite(float(ema.net[0].weight.sum()))
