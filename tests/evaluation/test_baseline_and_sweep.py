"""Re-evaluation against a baseline (changes beyond noise) and the sweep's summary.html."""

from __future__ import annotations

import json
from pathlib import Path

from framework.evaluation.baseline import compare_evaluations, mark
from framework.evaluation.report import load_reports_json, write_reports_json
from framework.evaluation.types import EvalReport
from framework.sweep import verdict, write_summary
from framework.tracking import compare_runs
from html_checks import assert_self_contained


def _run(path: Path, accuracy: float, recalls: dict[str, float], support: float = 200.0) -> Path:
    report = EvalReport("test", metrics={"accuracy": accuracy, "count": support * len(recalls)},
                        per_class={c: {"recall": r, "f1": r, "precision": r, "support": support}
                                   for c, r in recalls.items()})
    write_reports_json([report], path / "eval" / "reports.json")
    return path


def test_reports_json_round_trips(tmp_path: Path) -> None:
    run = _run(tmp_path / "a", 0.9, {"cat": 0.8})
    loaded = load_reports_json(run)["test"]
    assert loaded.metrics == {"accuracy": 0.9, "count": 200.0}
    assert loaded.per_class["cat"]["support"] == 200.0


def test_changes_beyond_noise_are_marked_per_class(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", 0.90, {"cat": 0.92, "dog": 0.88, "eel": 0.90})
    new = _run(tmp_path / "new", 0.89, {"cat": 0.91, "dog": 0.70, "eel": 0.97})
    text = "\n".join(compare_evaluations(base, new))
    assert "| accuracy | 0.9000 | 0.8900 | -0.0100 | within noise |" in text
    assert "| cat | recall | 0.9200 | 0.9100 | -0.0100 | within noise |" in text
    assert "| dog | recall | 0.8800 | 0.7000 | -0.1800 | **worse** |" in text
    assert "| eel | recall | 0.9000 | 0.9700 | +0.0700 | **better** |" in text
    assert "| dog | f1 | 0.8800 | 0.7000 | -0.1800 |  |" in text  # shown, not judged


def test_noise_depends_on_the_counts() -> None:
    assert mark("recall", 0.9, 0.8, 20, 20) == "within noise"  # 20 items: 0.1 is noise
    assert mark("recall", 0.9, 0.8, 2000, 2000) == "worse"
    assert mark("wer", 0.10, 0.05, 5000, 5000) == "better"  # lower is better
    assert mark("recall", 0.9, 0.8, None, 20) == ""


def test_compare_command_includes_the_evaluation_section(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", 0.90, {"cat": 0.92})
    new = _run(tmp_path / "new", 0.60, {"cat": 0.60})
    text = compare_runs(base, new)
    assert "## Evaluation against the baseline (A)" in text and "**worse**" in text


def _job(sweep: Path, name: str, accuracy: float | None, fit: bool | None, status: str = "completed",
         enforce: bool = True) -> None:
    job = sweep / name
    job.mkdir(parents=True)
    metrics = {} if accuracy is None else {"accuracy": accuracy}
    (job / "summary.json").write_text(json.dumps({"status": status, "overrides": [f"trainer.lr={name}"],
                                                  "metrics": metrics, "fit_to_ship": fit,
                                                  "enforce_success": enforce}))
    if status == "completed":
        (job / "report.html").write_text("<html></html>")


def test_summary_html_links_every_report_best_first_with_verdicts(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _job(sweep, "0", 0.70, False)
    _job(sweep, "1", 0.95, True)
    _job(sweep, "2", None, None, status="refused")
    _job(sweep, "3", 0.80, False, enforce=False)
    write_summary(sweep, "accuracy", True)
    text = (sweep / "summary.html").read_text()
    order = [text.index(f'href="{j}/report.html"') for j in ("1", "3", "0")]
    assert order == sorted(order)  # best first
    assert 'href="2/report.html"' not in text  # the refused job wrote no report
    assert "1 of 4 jobs fit to ship" in text
    for cell in ("<td>fit</td>", "<td>not fit</td>", "<td>not fit (not enforced)</td>", "<td>refused</td>"):
        assert cell in text
    assert_self_contained(text)
    markdown = (sweep / "summary.md").read_text()
    assert "| verdict |" in markdown and "| fit |" in markdown
    assert verdict({"status": "completed", "fit_to_ship": None}) == "no criteria"
