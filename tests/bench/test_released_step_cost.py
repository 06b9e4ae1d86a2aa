"""bench/released_step_cost.py: how it turns a run's metrics.jsonl into seconds per step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_gpu_suite import load


def _metrics(run_dir: Path, rows: list[tuple[str, int, float]]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": step, "kind": kind, "time": when, "metrics": {"loss": 1.0}}) for kind, step, when in rows]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_steps_are_timed_between_consecutive_train_rows_only(tmp_path: Path) -> None:
    bench = load("released_step_cost")
    _metrics(tmp_path, [("train", 1, 100.0), ("train", 2, 102.5), ("checkpoint", 2, 103.0),
                        ("train", 3, 104.5), ("train", 4, 107.5)])
    assert bench.step_seconds(tmp_path) == pytest.approx([2.5, 2.0, 3.0])  # the first step is not timed


def test_a_run_with_fewer_than_two_train_rows_is_refused_with_the_reason(tmp_path: Path) -> None:
    bench = load("released_step_cost")
    _metrics(tmp_path, [("train", 1, 100.0)])
    with pytest.raises(SystemExit, match="1 train rows.*at least 2 steps"):
        bench.step_seconds(tmp_path)
