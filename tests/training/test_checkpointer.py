"""The checkpointer alone: config differences, load_trained_weights, resume sources and checks,
saving through a strategy; and the neutral homes of RunInfo and flatten."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses
from torch import nn

from framework.errors import FrameworkError
from framework.training import Engine, export_weights, latest_checkpoint, load_trained_weights
from framework.training import checkpoint as ckpt
from framework.training.checkpointer import Checkpointer, SameConfig, SameData, config_differences
from framework.training.errors import ResumeRefused, TrainingStopped
from framework.training.strategy import SingleDevice

OLD = "trainer:\n  lr: 0.01\n  max_steps: 6\nmodel:\n  hidden: [8]\n"


def test_config_differences_ignore_what_may_change_and_report_the_rest() -> None:
    new = "trainer:\n  lr: 0.02\n  max_steps: 9\nmodel:\n  hidden: [8]\n  depth: 2\n"
    assert config_differences(OLD, new) == [("model.depth", "(absent)", "2"), ("trainer.lr", "0.01", "0.02")]
    assert config_differences(OLD, OLD) == []
    assert config_differences("", OLD) == [] and config_differences(": not yaml: [", OLD) == []


def test_the_engine_module_still_exports_config_differences() -> None:
    from framework.training.engine import config_differences as old_home

    assert old_home is config_differences


def _save(run_dir: Path, module: nn.Module, step: int, keep: int = 0, **kwargs: Any) -> tuple[Checkpointer, Path]:
    strategy = SingleDevice(torch.device("cpu"))
    strategy.prepare(module)
    checkpointer = Checkpointer(make_run(run_dir, OLD), strategy, keep=keep, **kwargs)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    state = {"format_version": ckpt.FORMAT_VERSION, "train_state": {"step": step}, "optimizer": optimizer.state_dict()}
    return checkpointer, checkpointer.save(step, state, optimizer)


def test_save_writes_a_verified_checkpoint_reports_it_and_rotates(tmp_path: Path) -> None:
    saved: list[tuple[int, Path]] = []
    task = TinyTask()
    for step in (1, 2, 3):
        checkpointer, path = _save(tmp_path, task, step, keep=2, on_saved=lambda s, p: saved.append((s, p)))
        assert ckpt.verify_checkpoint(path) is None and (checkpointer.last_step, checkpointer.last_path) == (step, path)
    assert [s for s, _ in saved] == [1, 2, 3]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000003", "step_00000002"]
    assert (path / ckpt.CONFIG).read_text() == OLD


def test_save_refuses_non_finite_weights(tmp_path: Path) -> None:
    task = TinyTask()
    with torch.no_grad():
        task.net[3].bias[0] = float("inf")
    with pytest.raises(TrainingStopped, match=r"refusing to checkpoint step 7: .*net\.3\.bias.*the last valid checkpoint is none"):
        _save(tmp_path, task, 7)
    assert ckpt.list_checkpoints(tmp_path) == []


def test_resume_source_auto_never_and_explicit(tmp_path: Path) -> None:
    checkpointer, path = _save(tmp_path, TinyTask(), 4)
    assert checkpointer.resume_source("never") is None
    assert checkpointer.resume_source("auto") == path
    assert checkpointer.resume_source(str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
    assert Checkpointer(make_run(tmp_path / "empty"), SingleDevice(torch.device("cpu"))).resume_source("auto") is None


def test_same_config_check_names_the_key_and_the_fix(tmp_path: Path) -> None:
    _, path = _save(tmp_path, TinyTask(), 2)
    SameConfig(OLD.replace("max_steps: 6", "max_steps: 60"))(path, {})  # a budget may change
    with pytest.raises(ResumeRefused, match=r"model.hidden \(checkpoint \[8\], now \[16\]\).*trainer.init_from="):
        SameConfig(OLD.replace("[8]", "[16]"))(path, {})


def test_a_further_resume_check_runs_and_can_refuse(tmp_path: Path) -> None:
    with Engine(make_cfg(max_steps=2), make_run(tmp_path)) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    seen: list[tuple[Path, int]] = []

    def refuse(path: Path, state: Mapping[str, Any]) -> None:
        seen.append((path, state["train_state"]["step"]))
        raise ResumeRefused(f"{path}: the data changed since this checkpoint")

    with Engine(make_cfg(max_steps=4), make_run(tmp_path)) as engine:
        engine.checkpointer.checks.append(refuse)
        with pytest.raises(ResumeRefused, match="the data changed"):
            engine.setup(TinyTask())
    assert seen == [(latest_checkpoint(tmp_path), 2)]


def test_the_engine_keeps_the_data_fingerprint_and_refuses_a_resume_onto_other_data(tmp_path: Path,
                                                                                    caplog: pytest.LogCaptureFixture) -> None:
    old = {"train": "8 records, sha256 aa", "val": "2 records, sha256 bb"}
    with Engine(make_cfg(max_steps=2), make_run(tmp_path), data_fingerprint=old) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    _, state = ckpt.read_checkpoint(latest_checkpoint(tmp_path))
    assert state["data_fingerprint"] == old
    new = {**old, "train": "8 records, sha256 cc"}
    with Engine(make_cfg(max_steps=4), make_run(tmp_path), data_fingerprint=new) as engine:
        with pytest.raises(ResumeRefused, match=r"the data changed since it was written: train \(checkpoint 8 "
                                                r"records, sha256 aa; now 8 records, sha256 cc\).*allow_data_change"):
            engine.setup(TinyTask())
    with Engine(make_cfg(max_steps=4), make_run(tmp_path), data_fingerprint=old) as engine:
        engine.setup(TinyTask())  # the same data resumes
        assert engine.state.step == 2
    SameData(new, allow_change=True)(latest_checkpoint(tmp_path), state)  # a warning, not a refusal
    assert "although the data changed: train" in caplog.text
    SameData(new)(latest_checkpoint(tmp_path), {})  # a checkpoint without a fingerprint: nothing to compare


def test_load_trained_weights_loads_ema_or_raw_weights(tmp_path: Path) -> None:
    with Engine(make_cfg(max_steps=3, ema_decay=0.5), make_run(tmp_path / "ema")) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    task = TinyTask()
    assert load_trained_weights(task, latest_checkpoint(tmp_path / "ema"), what="checkpoint") is True
    assert torch.equal(task.net[0].weight, engine.task.net[0].weight)  # the task holds the EMA weights
    export_weights(task, tmp_path / "export", "")
    again = TinyTask()
    assert load_trained_weights(again, tmp_path / "export", what="checkpoint") is False
    assert torch.equal(again.net[0].weight, task.net[0].weight)


def test_load_trained_weights_that_do_not_fit_is_one_line_naming_key_path_and_fix(tmp_path: Path) -> None:
    export_weights(TinyTask(), tmp_path / "export", "")
    with pytest.raises(FrameworkError) as err:
        load_trained_weights(nn.Linear(2, 2), tmp_path / "export", what="trainer.init_from")
    message = str(err.value)
    assert message.startswith(f"trainer.init_from={tmp_path / 'export'}: its weights do not fit this model")
    assert "\n" not in message and "model config" in message
    with pytest.raises(ckpt.CheckpointError, match=r"^checkpoint=.*missing is not usable: .*point checkpoint at"):
        load_trained_weights(TinyTask(), tmp_path / "missing", what="checkpoint")


def test_run_info_and_flatten_live_in_neutral_modules_and_keep_their_old_names() -> None:
    import framework
    from framework import hookspecs
    from framework.config_tree import flatten
    from framework.run_info import RunInfo
    from framework.tracking import mlflow_tracker

    assert hookspecs.RunInfo is RunInfo and framework.RunInfo is RunInfo
    assert mlflow_tracker.flatten is flatten
    assert flatten({"trainer": {"lr": 0.1, "betas": [0.9, 0.99]}}) == {"trainer.lr": "0.1", "trainer.betas": "[0.9, 0.99]"}
