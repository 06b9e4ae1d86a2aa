"""A 2x2 multirun through the real entry point leaves one ranked summary table."""

from __future__ import annotations

import csv
from pathlib import Path


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
