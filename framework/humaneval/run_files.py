"""Results written back into a finished run: the results file, ``summary.json`` (metrics and the
success verdicts, checked again with the new metrics) and ``report.html``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from framework.atomic import atomic_write_text
from framework.errors import FrameworkError
from framework.json_values import jsonable

log = logging.getLogger(__name__)


def update_run(run_dir: Path, results_path: Path, results: Mapping[str, Any], metrics: Mapping[str, float],
               prefix: str) -> None:
    """Write ``results``; replace the run's ``prefix`` metrics with ``metrics`` in ``summary.json``
    and check the ``success:`` criteria again; render ``report.html`` anew."""
    from framework.evaluation import html_report, success
    from framework.evaluation.report import load_run_config
    from framework.stage import SUMMARY_JSON

    results_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results_path, json.dumps(jsonable(dict(results)), indent=1, allow_nan=False))
    summary_path = run_dir / SUMMARY_JSON
    if not summary_path.is_file():
        raise FrameworkError(f"{run_dir} has no {SUMMARY_JSON}: point at a run directory python -m framework wrote")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    merged = {k: v for k, v in (summary.get("metrics") or {}).items() if not k.startswith(prefix)}
    merged.update(metrics)
    criteria = success.parse_criteria((load_run_config(run_dir).get("success") or {}))
    verdicts = success.check(criteria, {k: float("nan") if v is None else v for k, v in merged.items()})
    summary["metrics"] = merged
    summary["success"] = [{"metric": v.criterion.metric, "required": f"{v.criterion.op}{v.criterion.threshold:g}",
                           "value": v.value, "passed": v.passed} for v in verdicts]
    summary["fit_to_ship"] = all(v.passed for v in verdicts) if verdicts else None
    atomic_write_text(summary_path, json.dumps(jsonable(summary), indent=1, allow_nan=False))
    page = html_report.load_run_report(run_dir, verdicts=verdicts)
    if page is not None:
        html_report.write(page)
    log.info("%s results -> %s; summary.json%s updated", prefix.rstrip("/"), results_path,
             " and report.html" if page is not None else "")
