"""Failed success criteria reach the shell: exit code 3 after every artifact is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.evaluation.success import NOT_FIT_EXIT_CODE

RUN = ["+modality=tabular", "trainer.max_steps=6", "trainer.checkpoint_every=3", "success.accuracy='>=1.01'",
       "hydra.run.dir=run"]
ARTIFACTS = ("audit/datacard.md", "audit/audit.json", "metrics.jsonl", "report.md", "report.html", "summary.json",
             "eval/reports.json", "export/model.safetensors", "export/config.yaml")


@pytest.mark.slow
def test_failed_criteria_exit_3_and_still_write_everything(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli(*RUN)
    assert result.returncode == NOT_FIT_EXIT_CODE == 3, result.stderr[-3000:]
    assert "NOT fit to ship (exit code 3): accuracy" in result.stdout + result.stderr
    run = tmp_path / "run"
    missing = [a for a in ARTIFACTS if not (run / a).is_file()]
    assert not missing, missing
    assert list((run / "checkpoints").glob("step_*/model.safetensors"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["fit_to_ship"] is False
    assert {"metric": "accuracy", "required": ">=1.01", "passed": False}.items() <= summary["success"][0].items()
    assert "Fit to ship: no" in (run / "report.html").read_text()


@pytest.mark.slow
def test_not_enforced_criteria_report_without_failing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli(*RUN, "evaluation.enforce_success=false", "stages=[train,evaluate]")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NOT fit to ship (not enforced)" in result.stdout + result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["fit_to_ship"] is False and summary["enforce_success"] is False
    assert "not enforced" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.slow
def test_a_sweep_fails_only_when_no_job_is_fit(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sweep = tmp_path / "sweep"
    common = ["-m", "+modality=tabular", "trainer.max_steps=6", "stages=[train,evaluate]", "evaluation.splits=[val]",
              f"hydra.sweep.dir={sweep}"]
    one_fit = cli(*common, "success.accuracy='>=1.01','>=0.0'", "success.min_class_recall='>=0.0'")
    assert one_fit.returncode == 0, one_fit.stderr[-3000:]
    html = (sweep / "summary.html").read_text()
    assert html.count("<td>fit</td>") == 1 and html.count("<td>not fit</td>") == 1
    assert 'href="0/report.html"' in html and 'href="1/report.html"' in html
