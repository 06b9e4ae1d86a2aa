"""Resume: an interrupted and resumed run reproduces the uninterrupted run exactly (CPU)."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from engine_toy import NoisyRegression, Recorder, TinyTask, make_cfg, make_run, train_losses

from framework.training import Engine, Interrupted, latest_checkpoint
from framework.training.checkpoint import load_state, verify_checkpoint


def _sigterm_at(step: int):
    def hook(engine: Engine) -> None:
        if engine.state.step == step and engine._micro == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


@pytest.mark.parametrize("overrides", [{}, {"accumulate": 2, "ema_decay": 0.9, "checkpoint_every": 3}])
def test_sigterm_then_resume_reproduces_the_loss_curve(tmp_path, overrides):
    cfg = make_cfg(epochs=3, **overrides)
    with Engine(cfg, make_run(tmp_path / "a"), seed=7) as engine:
        torch.manual_seed(0)
        reference = train_losses(engine, TinyTask(), NoisyRegression())
        reference_weights = engine.unwrap(engine.model).state_dict()
        reference_ema = engine.eval_model(engine.model).state_dict()

    before = signal.getsignal(signal.SIGTERM)
    run_b = make_run(tmp_path / "b")
    part1: list[float] = []
    with pytest.raises(Interrupted) as stopped:
        with Engine(cfg, run_b, seed=7) as engine:
            torch.manual_seed(0)
            part1 = []
            model = engine.setup(TinyTask())
            for batch in engine.steps(engine.dataloader(NoisyRegression())):
                out = model(batch)
                engine.backward(out["loss"], out)
                part1.append(out["loss"].item())
                _sigterm_at(4)(engine)
    assert signal.getsignal(signal.SIGTERM) is before, "close() must restore the previous handler"
    assert stopped.value.step == 5  # the flag is read at the next step boundary
    assert verify_checkpoint(stopped.value.checkpoint) is None

    with Engine(cfg, run_b, seed=7) as engine:
        torch.manual_seed(999)  # a different init: resume must overwrite it
        part2 = train_losses(engine, TinyTask(), NoisyRegression())
        resumed_weights = engine.unwrap(engine.model).state_dict()
        resumed_ema = engine.eval_model(engine.model).state_dict()

    assert part1 + part2 == reference  # exact equality: data order, noise, dropout, optimizer state
    for key, value in reference_weights.items():
        assert torch.equal(value, resumed_weights[key]), key
    for key, value in reference_ema.items():
        assert torch.equal(value, resumed_ema[key]), key


def test_checkpoint_state_loads_with_weights_only(tmp_path):
    cfg = make_cfg(max_steps=4, ema_decay=0.99)
    with Engine(cfg, make_run(tmp_path), seed=1) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == "step_00000004"
    assert sorted(p.name for p in path.iterdir()) == ["config.yaml", "manifest.json", "model.safetensors", "state.pt"]
    state = load_state(path)  # weights_only=True inside
    assert state["train_state"]["step"] == 4
    assert set(state) >= {"optimizer", "schedule", "scaler", "rng", "ema", "early_stopping", "train_state"}
    assert (path / "config.yaml").read_text() == make_run(tmp_path).config_yaml


def test_resume_never_starts_fresh_and_a_finished_run_does_not_retrain(tmp_path):
    rec = Recorder()
    with Engine(make_cfg(max_steps=3), make_run(tmp_path), rec) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    with Engine(make_cfg(max_steps=3), make_run(tmp_path), rec) as engine:
        assert train_losses(engine, TinyTask(), NoisyRegression()) == []  # budget already spent
        assert engine.state.step == 3
    with Engine(make_cfg(max_steps=3, resume="never"), make_run(tmp_path)) as engine:
        assert len(train_losses(engine, TinyTask(), NoisyRegression())) == 3
    assert [s for s, _ in rec.checkpoints] == [3]


def test_explicit_resume_path_must_be_a_valid_checkpoint(tmp_path):
    with Engine(make_cfg(resume=str(tmp_path / "nope")), make_run(tmp_path)) as engine:
        with pytest.raises(ValueError, match="not a usable checkpoint"):
            engine.setup(TinyTask())
