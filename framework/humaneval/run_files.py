"""Results written back into a finished run: the results file, ``summary.json`` (metrics and the
success verdicts, checked again with the new metrics) and ``report.html``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import yaml

from framework.atomic import atomic_write_text
from framework.errors import FrameworkError
from framework.json_values import jsonable

log = logging.getLogger(__name__)


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's config: Hydra's ``.hydra/config.yaml``, else the one beside its export or newest
    checkpoint (empty when none is found)."""
    from framework.training import latest_checkpoint

    candidates = [run_dir / ".hydra" / "config.yaml", run_dir / "export" / "config.yaml"]
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        candidates.append(checkpoint / "config.yaml")
    for path in candidates:
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}


def update_run(run_dir: Path, results_path: Path, results: Mapping[str, Any], metrics: Mapping[str, float],
               prefix: str) -> None:
    """Write ``results``; replace the run's ``prefix`` metrics with ``metrics`` in ``summary.json``
    and check the ``success:`` criteria again; render ``report.html`` anew."""
    from framework.evaluation import html_report, success
    from framework.stage import SUMMARY_JSON

    results_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results_path, json.dumps(jsonable(dict(results)), indent=1, allow_nan=False))
    summary_path = run_dir / SUMMARY_JSON
    if not summary_path.is_file():
        raise FrameworkError(f"{run_dir} has no {SUMMARY_JSON}: point at a run directory python -m framework wrote")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    merged = {k: v for k, v in (summary.get("metrics") or {}).items() if not k.startswith(prefix)}
    merged.update(metrics)
    criteria = success.parse_criteria((run_config(run_dir).get("success") or {}))
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
