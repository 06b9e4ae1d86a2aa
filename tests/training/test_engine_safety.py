"""Honest resume and sane numbers: refused pickles, unusable or non-finite checkpoints, changed configs,
non-finite gradients, and metrics.jsonl after a resume (CPU, the toy task)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses
from safetensors.torch import save_file

from framework.training import Engine, TrainingStopped, latest_checkpoint, load_model_weights
from framework.training.checkpoint import (CheckpointError, WEIGHTS, list_checkpoints, load_state,
                                           write_manifest)
from framework.training.engine import ResumeRefused

CONFIG = "trainer:\n  lr: 0.01\n  max_steps: 6\n"


def _train(run_dir: Path, config_yaml: str = CONFIG, **cfg) -> Engine:  # type: ignore[no-untyped-def]
    with Engine(make_cfg(**{"max_steps": 6, "checkpoint_every": 3, "keep_checkpoints": 5, **cfg}),
                make_run(run_dir, config_yaml), seed=3) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
    return engine


class _MakesDir:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.path,))


def _replace(ckpt: Path, name: str, data: bytes) -> None:
    """Replace one file and rewrite the manifest to match: only the contents are wrong."""
    (ckpt / name).write_bytes(data)
    step = json.loads((ckpt / "manifest.json").read_text())["step"]
    write_manifest(ckpt, ["model.safetensors", "state.pt", "config.yaml"], step)


def test_a_malicious_state_pt_is_one_line_and_resume_falls_back(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    _train(tmp_path)
    newest = list_checkpoints(tmp_path)[0]
    marker = tmp_path / "pwned"
    _replace(newest, "state.pt", pickle.dumps(_MakesDir(str(marker))))
    with pytest.raises(CheckpointError) as err:
        load_state(newest)
    message = str(err.value)
    assert "\n" not in message and str(newest / "state.pt") in message
    assert "weights_only=False" not in message and not marker.exists()
    engine = _train(tmp_path, max_steps=6)
    assert not marker.exists()
    assert any("Skipping checkpoint" in r.message and "state.pt" in r.message for r in caplog.records)
    assert engine.state.step == 6 and latest_checkpoint(tmp_path).name == "step_00000006"


def test_garbage_state_with_a_matching_manifest_falls_back(tmp_path: Path) -> None:
    _train(tmp_path)
    _replace(list_checkpoints(tmp_path)[0], "state.pt", b"not a torch file at all")
    assert latest_checkpoint(tmp_path).name == "step_00000003"
    with Engine(make_cfg(max_steps=6), make_run(tmp_path, CONFIG), seed=3) as engine:
        engine.setup(TinyTask())
        assert engine.state.step == 3  # resumed from the older, valid checkpoint


def test_non_finite_weights_are_never_accepted(tmp_path: Path) -> None:
    _train(tmp_path)
    newest = list_checkpoints(tmp_path)[0]
    weights = {k: v.clone() for k, v in TinyTask().state_dict().items()}
    weights["net.0.weight"][0, 0] = float("nan")
    save_file(weights, str(tmp_path / "w.safetensors"))
    _replace(newest, WEIGHTS, (tmp_path / "w.safetensors").read_bytes())
    assert latest_checkpoint(tmp_path).name == "step_00000003"
    with pytest.raises(CheckpointError, match="non-finite weights"):
        load_model_weights(TinyTask(), newest, prefer_ema=False)


def test_every_checkpoint_unusable_refuses_unless_asked_to_start_over(tmp_path: Path) -> None:
    _train(tmp_path)
    for ckpt in list_checkpoints(tmp_path):
        _replace(ckpt, "state.pt", b"garbage")
    with Engine(make_cfg(max_steps=6), make_run(tmp_path, CONFIG)) as engine:
        with pytest.raises(ResumeRefused, match="trainer.resume=never"):
            engine.setup(TinyTask())
    with Engine(make_cfg(max_steps=2, resume="never"), make_run(tmp_path, CONFIG)) as engine:
        engine.setup(TinyTask())
        assert engine.state.step == 0


def test_resume_refuses_a_changed_config_but_allows_a_new_budget(tmp_path: Path) -> None:
    _train(tmp_path, max_steps=3)
    with Engine(make_cfg(max_steps=3), make_run(tmp_path, CONFIG.replace("0.01", "0.02"))) as engine:
        with pytest.raises(ResumeRefused, match=r"trainer.lr \(checkpoint 0.01, now 0.02\).*trainer.init_from="):
            engine.setup(TinyTask())
    engine = _train(tmp_path, CONFIG.replace("max_steps: 6", "max_steps: 5"), max_steps=5)
    assert engine.state.step == 5


def test_init_from_starts_a_new_run_from_a_checkpoints_weights(tmp_path: Path) -> None:
    _train(tmp_path / "a", max_steps=3)
    source = latest_checkpoint(tmp_path / "a")
    changed = CONFIG.replace("0.01", "0.5")  # a fine-tuning run may change anything
    with Engine(make_cfg(max_steps=2, init_from=str(source)), make_run(tmp_path / "b", changed)) as engine:
        task = TinyTask()
        engine.setup(task)
        assert engine.state.step == 0  # not a resume: counters, optimizer and schedule are fresh
        expected = TinyTask()
        load_model_weights(expected, source)
        assert all(torch.equal(a, b) for a, b in zip(task.state_dict().values(), expected.state_dict().values()))


def test_non_finite_gradients_skip_the_step_even_with_a_finite_loss(tmp_path: Path) -> None:
    task = TinyTask()
    calls = []

    def grad_hook(grad: torch.Tensor) -> torch.Tensor:  # the third backward's gradient is inf
        calls.append(1)
        return grad * float("inf") if len(calls) == 3 else grad

    task.net[0].weight.register_hook(grad_hook)
    with Engine(make_cfg(max_steps=4, clip_grad_norm=None), make_run(tmp_path, CONFIG)) as engine:
        train_losses(engine, task, NoisyRegression())
    assert engine.state.step == 4 and engine.state.bad_steps_total == 1
    assert all(torch.isfinite(p).all() for p in task.parameters())
    assert load_state(latest_checkpoint(tmp_path))["train_state"]["bad_steps_total"] == 1


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path: Path) -> None:
    with Engine(make_cfg(max_steps=3), make_run(tmp_path, CONFIG)) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
        with torch.no_grad():
            engine.task.net[0].weight[0, 0] = float("inf")  # type: ignore[union-attr, index]
        engine.state.step = 4
        with pytest.raises(TrainingStopped, match="refusing to checkpoint step 4.*step_00000003"):
            engine.save_checkpoint()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003"]


def test_resume_supersedes_metrics_rows_after_the_checkpoint(tmp_path: Path) -> None:
    _train(tmp_path)
    shutil.rmtree(list_checkpoints(tmp_path)[0])  # killed after step 6 was logged, before its checkpoint
    _train(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # no step twice
    superseded = [json.loads(line) for line in (tmp_path / "metrics.superseded.jsonl").read_text().splitlines()]
    assert [r["step"] for r in superseded if r["kind"] == "train"] == [4, 5, 6]
