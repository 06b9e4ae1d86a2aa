"""Checkpoints: atomic writes, verification, rotation, tied weights, crash safety."""

from __future__ import annotations

import logging
import os
import shutil
import signal

import pytest
import torch
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses
from torch import nn

from framework.training import Engine, export_weights, latest_checkpoint, load_model_weights
from framework.training import checkpoint as ckpt


def _train(run_dir, **overrides):
    with Engine(make_cfg(**overrides), make_run(run_dir)) as engine:
        train_losses(engine, TinyTask(), NoisyRegression())
        return engine


def test_rotation_keeps_the_newest(tmp_path):
    _train(tmp_path, max_steps=10, checkpoint_every=2, keep_checkpoints=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000010", "step_00000008"]


@pytest.mark.parametrize("damage", ["no_manifest", "corrupt_weights", "truncated_state", "temp_dir"])
def test_damaged_newer_checkpoint_is_skipped(tmp_path, caplog, damage):
    _train(tmp_path, max_steps=4)
    good = latest_checkpoint(tmp_path)
    newer = ckpt.checkpoint_root(tmp_path) / "step_00000009"
    if damage == "temp_dir":
        newer = ckpt.checkpoint_root(tmp_path) / ".tmp-step_00000009-123"
    shutil.copytree(good, newer)
    if damage == "no_manifest":
        (newer / "manifest.json").unlink()
    elif damage == "corrupt_weights":
        data = bytearray((newer / "model.safetensors").read_bytes())
        data[-1] ^= 0xFF
        (newer / "model.safetensors").write_bytes(bytes(data))
    elif damage == "truncated_state":
        (newer / "state.pt").write_bytes((newer / "state.pt").read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        assert latest_checkpoint(tmp_path) == good
    if damage != "temp_dir":
        assert "Skipping checkpoint" in caplog.text
    with Engine(make_cfg(max_steps=6), make_run(tmp_path)) as engine:
        engine.setup(TinyTask())
        assert engine.state.step == 4  # resume=auto picked the valid one
    assert not (ckpt.checkpoint_root(tmp_path) / ".tmp-step_00000009-123").exists()  # leftovers cleaned


def test_crash_during_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    engine = _train(tmp_path, max_steps=3)
    previous = latest_checkpoint(tmp_path)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    engine.state.step = 5
    with pytest.raises(OSError, match="simulated"):
        engine.save_checkpoint()
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == previous
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000003"]


def test_second_sigint_during_save_does_not_corrupt(tmp_path, monkeypatch):
    engine = Engine(make_cfg(max_steps=2), make_run(tmp_path))
    try:
        engine.setup(TinyTask())
        real_save = ckpt.torch.save

        def save_then_sigint(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            real_save(*args, **kwargs)

        monkeypatch.setattr(ckpt.torch, "save", save_then_sigint)
        path = engine.save_checkpoint()
    finally:
        engine.close()
    assert ckpt.verify_checkpoint(path) is None
    assert engine._signal.requested  # noted, to stop at the next boundary


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied: one tensor under two names


def test_tied_weights_round_trip(tmp_path):
    source = TiedLM()
    files = export_weights(source, tmp_path / "export", "model: tied\n")
    assert [f.name for f in files] == ["model.safetensors", "config.yaml"]
    target = TiedLM()
    load_model_weights(target, tmp_path / "export")
    assert torch.equal(target.embed.weight, source.embed.weight)
    assert target.head.weight is target.embed.weight


def test_load_model_weights_is_strict(tmp_path):
    export_weights(TinyTask(), tmp_path, "")
    with pytest.raises(RuntimeError):
        load_model_weights(nn.Linear(2, 2), tmp_path)
