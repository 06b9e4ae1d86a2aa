"""The engine trains from a shard stream, keeps its layout in the checkpoint, and resumes mid-epoch
on exactly the batches an uninterrupted run would have seen."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from framework.data.shards import ShardWriter
from framework.data.stream import ShardStream
from framework.training import Engine
from framework.training.errors import ResumeRefused
from engine_toy import IN_DIM, TinyTask, make_cfg, make_run


def decode(sample) -> dict[str, torch.Tensor]:
    values = struct.unpack(f"{IN_DIM + 1}f", sample.data["bin"])
    return {"x": torch.tensor(values[:IN_DIM]), "y": torch.tensor(values[IN_DIM]),
            "i": torch.tensor(int(sample.key))}


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    gen = torch.Generator().manual_seed(0)
    with ShardWriter(tmp_path / "shards", per_shard=10) as writer:
        for i in range(60):
            x = torch.randn(IN_DIM, generator=gen)
            writer.write(f"{i:04d}", {"bin": struct.pack(f"{IN_DIM + 1}f", *x.tolist(), float(x.sum())),
                                      "txt": b"row"})
    return writer.paths


def seen_items(run_dir: Path, shards: list[Path], workers: int, max_steps: int, resume: str = "auto") -> list[int]:
    cfg = make_cfg(max_steps=max_steps, num_workers=workers, checkpoint_every=3, resume=resume, batch_size=4)
    stream = ShardStream(shards, decode, seed=7, buffer_size=6)
    items: list[int] = []
    with Engine(cfg, make_run(run_dir)) as engine:
        model = engine.setup(TinyTask())
        for batch in engine.steps(engine.dataloader(stream)):
            items += batch["i"].tolist()
            engine.backward(model(batch)["loss"])
    return items


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # worker start-up: seconds
def test_stream_resume_continues_with_the_remaining_items(tmp_path: Path, shards: list[Path], workers: int) -> None:
    full = seen_items(tmp_path / "full", shards, workers=workers, max_steps=12)
    assert len(full) == 48 and len(set(full)) == 48  # within one epoch (15 batches): no item twice
    first = seen_items(tmp_path / "cut", shards, workers=workers, max_steps=7)  # checkpoints at 3 and 6, then 7
    state = torch.load(tmp_path / "cut" / "checkpoints" / "step_00000007" / "state.pt", weights_only=True)
    assert state["data_state"]["layout"]["num_workers"] == workers
    rest = seen_items(tmp_path / "cut", shards, workers=workers, max_steps=12)
    assert first + rest == full


def test_mid_epoch_resume_with_other_workers_is_refused(tmp_path: Path, shards: list[Path]) -> None:
    seen_items(tmp_path, shards, workers=0, max_steps=5)
    with pytest.raises(ResumeRefused, match="num_workers 0 -> 2"):
        seen_items(tmp_path, shards, workers=2, max_steps=8)
