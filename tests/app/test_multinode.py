"""Two torchrun agents on this machine act as two nodes (``--nnodes=2 --rdzv-backend=c10d``): one
run dir, one metrics file, one checkpoint set with a shard from each node; and when a node's worker
dies, ``--max-restarts`` restarts both and the run resumes from its last checkpoint and finishes.

The working directory stands in for the shared filesystem every node of a real cluster mounts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from framework import hookimpl
from framework.training import latest_checkpoint

HERE = Path(__file__).resolve().parent
TRAIN = ["+modality=tabular", "trainer.distributed=fsdp", "trainer.log_every=1", "trainer.checkpoint_every=4",
         "trainer.max_steps=12", "evaluation.enforce_success=false"]


class KillOnce:
    """An observer that kills its own process (SIGKILL: a node lost, no clean-up) once the checkpoint
    of step ``at`` is saved, in the first attempt of an elastic run only."""

    def __init__(self, at: int) -> None:
        self.at = at

    @hookimpl
    def framework_checkpoint_saved(self, run: Any, step: int, path: Path) -> None:
        if step == self.at and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0":
            os.kill(os.getpid(), signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_nodes(cwd: Path, args: list[str], launcher: list[str], **env_vars: str) -> list[str]:
    """Start two torchrun agents (one process each) that rendezvous as two nodes; wait for both;
    return each one's output. Both must exit 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), **env_vars}
    env.pop("FRAMEWORK_RUN_ID", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}", *launcher,
               "-m", "framework", *args]
    logs = [cwd / f"node{i}.log" for i in (0, 1)]
    agents = [subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
              for log in logs]
    try:
        codes = [agent.wait(timeout=600) for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    outputs = [log.read_text() for log in logs]
    for code, output in zip(codes, outputs):
        assert code == 0, output[-4000:]
    return outputs


def _only_run_dir(cwd: Path) -> Path:
    run_dirs = list((cwd / "outputs" / "tabular").iterdir())
    assert len(run_dirs) == 1, run_dirs  # both nodes agreed on one run dir
    return run_dirs[0]


def _train_steps(run: Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if row["kind"] == "train"]


@pytest.mark.slow
def test_two_nodes_share_one_run_dir_metrics_file_and_checkpoint_set(tmp_path: Path) -> None:
    _two_nodes(tmp_path, [*TRAIN, "stages=[train,evaluate,export]"], ["--rdzv-id=two-nodes"])
    run = _only_run_dir(tmp_path)
    assert _train_steps(run) == list(range(1, 13))  # one metrics file, each step once (rank 0 writes)
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["step_00000008", "step_00000012"]  # keep_checkpoints=2; no stray temp dirs
    last = latest_checkpoint(run)
    assert last is not None and len(list((last / "sharded").glob("*.distcp"))) == 2  # a shard from each node
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "accuracy" in summary["metrics"]  # evaluated on both nodes
    assert (run / "export" / "model.safetensors").is_file()  # gathered once, to rank 0


@pytest.mark.slow
def test_a_node_that_dies_is_restarted_and_the_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    rendezvous = f"job-{uuid.uuid4().hex[:8]}"
    outputs = _two_nodes(tmp_path, [*TRAIN, "stages=[train,evaluate]", "allowed_targets=[test_multinode]",
                                     "+callbacks.kill._target_=test_multinode.KillOnce", "+callbacks.kill.at=4"],
                         [f"--rdzv-id={rendezvous}", "--max-restarts=1"],
                         # The agent's store outlives a restart with the last attempt's keys, which the
                         # new workers would read (pytorch/pytorch#135712): each attempt gets its own.
                         TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    run = _only_run_dir(tmp_path)
    assert run.name == f"elastic-{rendezvous}"  # the restarted workers found the same run dir
    log = "".join(outputs)
    assert "Resumed from" in log and "step_00000004" in log, log[-4000:]
    assert _train_steps(run) == list(range(1, 13))  # steps 1-4 from the first attempt, 5-12 after the restart
    assert json.loads((latest_checkpoint(run) / "manifest.json").read_text())["step"] == 12
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_restarts_without_a_rendezvous_id_or_run_dir_are_refused(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("+modality=tabular", env={"WORLD_SIZE": "2", "RANK": "0", "TORCHELASTIC_MAX_RESTARTS": "3",
                                           "TORCHELASTIC_RUN_ID": "none"})
    assert result.returncode != 0
    assert "--rdzv-id" in result.stderr and "hydra.run.dir" in result.stderr
