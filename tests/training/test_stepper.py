"""The optimizer stepper alone: clipping with the pre-clip norm returned, the lr factor, skipping,
fp16 scaling, EMA; and the loop's one-backward-per-batch contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run
from torch import nn

from framework.training import Engine
from framework.training.ema import ModelEMA
from framework.training.stepper import OptimizerStepper, build_adamw
from framework.training.strategy import SingleDevice

CPU = torch.device("cpu")


def _stepper(module: nn.Module, **kwargs) -> OptimizerStepper:  # type: ignore[no-untyped-def]
    optimizer = torch.optim.SGD([{"params": [module.weight], "lr": 1.0}, {"params": [module.bias], "lr": 0.5}])
    return OptimizerStepper(module, optimizer, grad_norm=SingleDevice(CPU).grad_norm, **kwargs)


def _grads(module: nn.Linear, scale: float = 1.0) -> None:
    module.weight.grad = torch.full_like(module.weight, 3.0 * scale)
    module.bias.grad = torch.full_like(module.bias, 4.0 * scale)


def test_step_clips_sets_the_scheduled_lr_and_returns_the_pre_clip_norm() -> None:
    module = nn.Linear(1, 1)
    with torch.no_grad():
        module.weight.fill_(0.0)
        module.bias.fill_(0.0)
    stepper = _stepper(module, clip_grad_norm=1.0)
    _grads(module)
    norm = stepper.norm_to_check()
    assert norm is not None and norm.item() == pytest.approx(5.0)
    returned = stepper.step(norm, lr_factor=0.5, need_norm=False)
    assert returned is norm  # clipping: the norm is returned (logged) every step
    assert [g["lr"] for g in stepper.optimizer.param_groups] == [0.5, 0.25] and stepper.lr == 0.5
    # SGD with the clipped gradient (3, 4) / 5 at lr 0.5 and 0.25
    assert module.weight.item() == pytest.approx(-0.5 * 0.6) and module.bias.item() == pytest.approx(-0.25 * 0.8)
    assert module.weight.grad is None  # zeroed


def test_without_clipping_the_norm_comes_back_only_when_logged() -> None:
    module = nn.Linear(1, 1)
    stepper = _stepper(module)
    _grads(module)
    assert stepper.step(stepper.norm_to_check(), 1.0, need_norm=False) is None
    _grads(module)
    assert stepper.step(stepper.norm_to_check(), 1.0, need_norm=True).item() == pytest.approx(5.0)


def test_skip_drops_the_gradients_and_leaves_the_weights() -> None:
    module = nn.Linear(1, 1)
    before = module.weight.detach().clone()
    stepper = _stepper(module)
    _grads(module)
    stepper.skip()
    assert module.weight.grad is None and torch.equal(module.weight, before)


def test_fp16_scales_the_loss_checks_no_norm_and_round_trips_its_state() -> None:
    module = nn.Linear(1, 1)
    stepper = _stepper(module, fp16=True, clip_grad_norm=100.0)
    assert stepper.scaler is not None and stepper.norm_to_check() is None  # the scaler checks gradients
    loss = module(torch.ones(1, 1)).sum()
    assert stepper.scale(loss).item() == pytest.approx(loss.item() * stepper.scaler.get_scale())
    stepper.scale(loss).backward()
    norm = stepper.step(None, 1.0, need_norm=True)
    assert norm is not None and torch.isfinite(norm)  # computed after unscaling
    state = stepper.state_dict()
    other = _stepper(nn.Linear(1, 1), fp16=True)
    other.load_state_dict(state)
    assert other.scaler.state_dict() == stepper.scaler.state_dict() and other.base_lrs == [1.0, 0.5]


def test_ema_follows_steps_restarts_and_is_copied_in_at_the_end() -> None:
    module = nn.Linear(1, 1)
    stepper = _stepper(module, ema=ModelEMA(module, 0.5))
    start = module.weight.detach().clone()
    _grads(module)
    stepper.step(stepper.norm_to_check(), 1.0, need_norm=False)
    assert torch.allclose(stepper.eval_module(module).weight, (start + module.weight) / 2)
    stepper.reset_ema()
    assert torch.equal(stepper.ema.module.weight, module.weight)
    task = nn.Linear(1, 1)
    assert stepper.finish(task) and torch.equal(task.weight, module.weight)
    assert _stepper(nn.Linear(1, 1)).finish(task) is False


def test_build_adamw_decays_matrices_only_and_takes_groups() -> None:
    task = TinyTask()
    optimizer = build_adamw(task, lr=0.1, betas=(0.9, 0.99), weight_decay=0.2, device=CPU)
    assert [(g["weight_decay"], [p.ndim for p in g["params"]]) for g in optimizer.param_groups] == [(0.2, [2, 2]), (0.0, [1, 1])]
    custom = build_adamw(task, lr=0.1, betas=(0.9, 0.99), weight_decay=0.2, device=CPU,
                         param_groups=[{"params": list(task.parameters()), "lr": 0.01}])
    assert [g["lr"] for g in custom.param_groups] == [0.01]


def _loop(tmp_path: Path, backwards_per_batch: int) -> None:
    with Engine(make_cfg(max_steps=3), make_run(tmp_path)) as engine:
        model = engine.setup(TinyTask())
        for batch in engine.steps(engine.dataloader(NoisyRegression())):
            for _ in range(backwards_per_batch):
                engine.backward(model(batch)["loss"])


def test_a_batch_without_backward_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"engine.backward\(loss\) was not called for micro-batch 1 of epoch 0"):
        _loop(tmp_path, 0)


def test_a_second_backward_for_one_batch_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="called twice for one batch"):
        _loop(tmp_path, 2)


def test_backward_outside_steps_is_an_error(tmp_path: Path) -> None:
    with Engine(make_cfg(max_steps=1), make_run(tmp_path)) as engine:
        with pytest.raises(RuntimeError, match="setup"):
            engine.backward(torch.tensor(1.0))
        model = engine.setup(TinyTask())
        with pytest.raises(RuntimeError, match="outside engine.steps"):
            engine.backward(model(next(iter(engine.dataloader(NoisyRegression()))))["loss"])
