"""Two CPU processes (gloo) train with DDP: identical weights on both ranks, one valid checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from ddp_launch import join_group, spawn
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses

from framework.training import Engine, latest_checkpoint, load_model_weights
from framework.training.distributed import shutdown_distributed


def _worker(rank: int, world: int, port: int, run_dir: str) -> None:
    join_group(rank, world, port)
    try:
        run = make_run(Path(run_dir))
        with Engine(make_cfg(max_steps=6, accumulate=2, checkpoint_every=3), run, seed=3) as engine:
            assert (engine.rank, engine.world_size) == (rank, world)
            torch.manual_seed(rank)  # different inits: DDP must broadcast rank 0's
            train_losses(engine, TinyTask(), NoisyRegression(n=40))
            flat = torch.cat([p.detach().flatten() for p in engine.unwrap(engine.model).parameters()])
            gathered = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
            if rank == 0:
                torch.save(flat, Path(run_dir) / "rank0_weights.pt")
    finally:
        shutdown_distributed()


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    spawn(_worker, 2, str(tmp_path))
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == "step_00000006"
    task = TinyTask()
    load_model_weights(task, path)
    flat = torch.cat([p.detach().flatten() for p in task.parameters()])
    assert torch.equal(flat, torch.load(tmp_path / "rank0_weights.pt"))


def _sigterm_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    import signal

    from framework.training import Interrupted

    join_group(rank, world, port)

    def signal_rank_one(engine: Engine) -> None:
        if rank == 1 and engine.state.step == 3 and engine._micro == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # only this rank is told to stop

    try:
        with Engine(make_cfg(max_steps=50), make_run(Path(run_dir)), seed=3) as engine:
            try:
                train_losses(engine, TinyTask(), NoisyRegression(n=40), hook=signal_rank_one)
            except Interrupted as stop:
                (Path(run_dir) / f"rank{rank}_stopped_at").write_text(str(stop.step))
            else:
                raise AssertionError(f"rank {rank} trained to the end despite SIGTERM on rank 1")
    finally:
        shutdown_distributed()


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    spawn(_sigterm_worker, 2, str(tmp_path))
    stopped = {(tmp_path / f"rank{r}_stopped_at").read_text() for r in (0, 1)}
    assert len(stopped) == 1, stopped  # both ranks stopped at one step
    step = int(stopped.pop())
    assert 3 <= step < 50
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.name == f"step_{step:08d}"
