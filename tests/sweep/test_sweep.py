"""A 2x2 multirun through the real entry point leaves one ranked summary table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_by_two_multirun_writes_a_ranked_summary(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sweep_dir = tmp_path / "sweep"
    result = cli(
        "-m", "+modality=tabular", "trainer.lr=1e-4,3e-3", "model.hidden=[8],[32]",
        "trainer.max_steps=40", "trainer.epochs=100", "stages=[train,evaluate]", "evaluation.splits=[val]",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2", "3"]
    for job in jobs:  # each job in its own dir, with its own artifacts
        assert (sweep_dir / job / "summary.json").is_file()
        assert (sweep_dir / job / "report.md").is_file()
    with (sweep_dir / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    overrides = {row["overrides"] for row in rows}  # only what varies between jobs
    assert overrides == {f"trainer.lr={lr} model.hidden=[{h}]" for lr in ("0.0001", "0.003") for h in (8, 32)}
    assert all(row["status"] == "completed" for row in rows)
    # Ranked by the first success criterion (accuracy, higher is better), best first.
    accuracy = [float(row["accuracy"]) for row in rows]
    assert accuracy == sorted(accuracy, reverse=True)
    markdown = (sweep_dir / "summary.md").read_text()
    assert "ranked by `accuracy` (higher is better)" in markdown
    assert "Every job: `+modality=tabular" in markdown
    assert markdown.count("| completed |") == 4


def _job(sweep_dir: Path, name: str, status: str, metrics: dict, overrides: list[str]) -> None:
    import json

    (sweep_dir / name).mkdir(parents=True)
    (sweep_dir / name / "summary.json").write_text(json.dumps({"status": status, "overrides": overrides,
                                                                "metrics": metrics}))


def test_objective_is_the_ranking_metric() -> None:
    from omegaconf import OmegaConf

    from framework.sweep import objective, ranking

    by_success = OmegaConf.create({"success": {"wer": "<=0.2", "accuracy": ">=0.9"}})
    assert ranking(by_success) == ("wer", False)  # the first criterion, lower is better by its operator
    assert objective(by_success, {"wer": 0.12, "accuracy": 0.5}) == 0.12
    assert objective(by_success, {"accuracy": 0.5}) is None  # not measured: the sweeper sees no value
    chosen = OmegaConf.create({"success": {"wer": "<=0.2"}, "sweep": {"metric": "accuracy", "mode": "max"}})
    assert ranking(chosen) == ("accuracy", True) and objective(chosen, {"accuracy": 0.7, "wer": 0.1}) == 0.7
    assert ranking(OmegaConf.create({})) == ("val_loss", False)


def test_failed_and_refused_jobs_rank_last(tmp_path: Path) -> None:
    from framework.sweep import write_summary

    _job(tmp_path, "0", "failed", {}, ["+modality=tabular", "trainer.lr=1"])
    _job(tmp_path, "1", "completed", {"val_loss": 0.30}, ["+modality=tabular", "trainer.lr=0.1"])
    _job(tmp_path, "2", "refused", {"val_loss": float("nan")}, ["+modality=tabular", "trainer.lr=0.01"])
    _job(tmp_path, "3", "completed", {"val_loss": 0.10}, ["+modality=tabular", "trainer.lr=0.001"])
    csv_path, md_path = write_summary(tmp_path, "val_loss", higher_is_better=False)
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["rank"], r["job"], r["status"]) for r in rows] == [
        ("1", "3", "completed"), ("2", "1", "completed"), ("3", "0", "failed"), ("4", "2", "refused")]
    assert rows[0]["overrides"] == "trainer.lr=0.001" and rows[2]["val_loss"] == ""
    assert "ranked by `val_loss` (lower is better)" in md_path.read_text()
