"""Two CPU processes (gloo) train with DDP: identical weights on both ranks, one valid checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run, train_losses

from framework.testing.ddp import join_group, spawn
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
        # Closed: the DDP wrapper (whose reducer holds the process group) is let go.
        assert not isinstance(engine.model, torch.nn.parallel.DistributedDataParallel)
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


def _resume_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    join_group(rank, world, port)
    try:
        with Engine(make_cfg(max_steps=6, checkpoint_every=3), make_run(Path(run_dir)), seed=3) as engine:
            torch.manual_seed(100 + rank)  # a different init on every rank and every run: resume overwrites it
            losses = train_losses(engine, TinyTask(dropout=0.5), NoisyRegression(n=40))
            flat = torch.cat([p.detach().flatten() for p in engine.unwrap(engine.model).parameters()])
            torch.save({"losses": losses, "weights": flat}, Path(run_dir) / f"rank{rank}.pt")
    finally:
        shutdown_distributed()


@pytest.mark.slow
def test_resumed_ddp_run_continues_every_ranks_own_random_stream(tmp_path):
    import shutil

    from framework.training.checkpoint import checkpoint_root

    spawn(_resume_worker, 2, str(tmp_path / "a"))  # uninterrupted: checkpoints at steps 3 and 6
    middle = checkpoint_root(tmp_path / "a") / "step_00000003"
    shutil.copytree(middle, checkpoint_root(tmp_path / "b") / middle.name)
    spawn(_resume_worker, 2, str(tmp_path / "b"))  # resumes at step 3
    full = [torch.load(tmp_path / "a" / f"rank{r}.pt") for r in (0, 1)]
    resumed = [torch.load(tmp_path / "b" / f"rank{r}.pt") for r in (0, 1)]
    # Dropout draws from each rank's own generator (seeded seed + rank); a resume that gave every
    # rank rank 0's saved state would change rank 1's losses from step 4 on.
    assert full[0]["losses"][3:] != full[1]["losses"][3:]
    for rank in (0, 1):
        assert resumed[rank]["losses"] == full[rank]["losses"][3:], f"rank {rank}"
        assert torch.equal(resumed[rank]["weights"], full[rank]["weights"])


class _Indexed(torch.utils.data.Dataset):
    """Items ``{"image": (1,), "target": i}`` for ``i < n``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": torch.zeros(1), "target": torch.tensor(i)}


class _TargetStats(torch.nn.Module):
    """'Loss' = mean target and 'acc' = share of even targets: whole-set values are known exactly."""

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        target = batch["target"]
        return {"loss": target.float().mean(), "acc": (target % 2 == 0).float().mean()}


def _agreement_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    from framework.training.config import EarlyStoppingConfig
    from plugins.vision.loop import validation_metrics

    join_group(rank, world, port)
    try:
        cfg = make_cfg(max_steps=40, eval_every=1, early_stopping=EarlyStoppingConfig(patience=2))
        with Engine(cfg, make_run(Path(run_dir)), seed=3) as engine:
            # Validation over a sharded set reports the whole set's figures on every rank.
            loader = engine.dataloader(_Indexed(10), batch_size=3, shuffle=False)
            whole = validation_metrics(engine, _TargetStats(), loader)
            # Only rank 1's validation stops improving; early stopping must stop both ranks together.
            calls = []

            def validate() -> dict[str, float]:
                calls.append(1)
                return {"val_loss": 1.0 if rank == 1 else 1.0 / len(calls)}

            train_losses(engine, TinyTask(), NoisyRegression(n=40), validate=validate)
            result = {"whole": whole, "step": engine.state.step, "evals": len(calls), "reason": engine._stop_reason}
            (Path(run_dir) / f"rank{rank}.json").write_text(__import__("json").dumps(result))
    finally:
        shutdown_distributed()


@pytest.mark.slow
def test_validation_and_early_stopping_agree_across_ranks(tmp_path):
    import json

    spawn(_agreement_worker, 2, str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for result in ranks:
        assert result["whole"] == {"val_loss": 4.5, "val_acc": 0.5}  # targets 0..9, not one rank's half
    assert ranks[0]["step"] == ranks[1]["step"] == 3  # rank 1: best at 1, no better at 2 and 3
    assert ranks[0]["evals"] == ranks[1]["evals"] == 3
    assert ranks[0]["reason"] == ranks[1]["reason"] and "early stopping" in ranks[0]["reason"]
