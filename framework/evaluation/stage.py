"""The evaluation stages of a run: retention with the starting weights, per-split evaluation with
the success criteria, and the closing report page with the verdict."""

from __future__ import annotations

import logging
from pathlib import Path

from framework.atomic import atomic_write_text
from framework.errors import FrameworkError
from framework.evaluation import success
from framework.evaluation.types import EvalReport, flatten
from framework.stage import Run, RunResult

log = logging.getLogger(__name__)


def evaluate_split(run: Run, split: str) -> EvalReport:
    """The modality's report of one split, with the plugins' metrics merged in; observers notified
    (on rank 0). After sharded training every rank calls it together, with the sharded task."""
    from framework.training.fsdp import root_gathered

    data = run.require(run.data, "data")
    task = run.sharded_task if run.sharded_task is not None else run.require(run.task, "task")
    with run.scratch_outputs(), root_gathered(task):
        report: EvalReport = run.call("evaluate", task, data, split)
        extra_metrics = run.plugins.metrics(run.modality.name)
        if extra_metrics:
            predictions = run.call("predict", task, data.records(split), split)
            for metric in extra_metrics:
                report.merge_metrics(metric.compute(predictions), source=metric.name)
    if run.is_main:
        run.plugins.evaluated(run.info, -1, split, report.metrics)
    return report


class RetentionStart:
    """``evaluation.retention`` set, on the main process of a run that evaluates (on every rank when
    training shards the model, since every rank then scores it with the trained weights): read the
    retention set; when the run trains, rank 0 scores it with the starting weights first (those of
    ``trainer.init_from`` when fine-tuning, which the engine loads again when training starts)."""

    name = "retention (starting weights)"

    def applies(self, run: Run) -> bool:
        return run.selected("evaluate") and (run.is_main or run.shards_model) and \
            run.config.evaluation.retention is not None

    def __call__(self, run: Run) -> None:
        from framework.evaluation.retention import START_SPLIT, load_retention
        from framework.training import load_trained_weights

        run.retention = load_retention(run.config.evaluation, run.require(run.data, "data"), run.ctx.data)
        if run.retention is None or not run.selected("train") or not run.is_main:
            return
        init_from = run.config.trainer.init_from
        if init_from:
            load_trained_weights(run.require(run.task, "task"), Path(init_from), what="trainer.init_from")
        run.retention.start = evaluate_split(run, START_SPLIT)
        log.info("retention set, starting weights: %s", brief(run.retention.start.metrics))


class Evaluate:
    """``stages=[evaluate, ...]``, on the main process (every rank holds the same weights), or on
    every rank together when training sharded the model (FSDP2: each forward pass gathers the
    shards; the other ranks' files go to a scratch directory): each split of
    ``evaluation.splits`` that has data, the retention set with the trained weights, the success
    criteria; rank 0 writes ``report.md`` and ``eval/reports.json``."""

    name = "evaluate"

    def applies(self, run: Run) -> bool:
        return run.selected("evaluate") and (run.is_main or run.sharded_task is not None)

    def __call__(self, run: Run) -> None:
        from framework.data.stage import audit_line
        from framework.evaluation import report as report_md
        from framework.evaluation.retention import SPLIT as RETENTION_SPLIT

        data, cfg = run.require(run.data, "data"), run.config.evaluation
        for split in cfg.splits:
            if not data.splits.get(split):
                log.info("evaluate: no %r split, skipped", split)
                continue
            run.reports.append(evaluate_split(run, split))
        if not run.reports:
            raise FrameworkError(f"nothing to evaluate: none of the splits {list(cfg.splits)} has data; "
                                 f"set data.val / data.test or evaluation.splits")
        if run.retention is not None:
            run.retention.trained = evaluate_split(run, RETENTION_SPLIT)
        if not run.is_main:
            return
        result = run.result
        result.metrics = flatten(run.reports)
        if run.retention is not None:
            result.metrics.update(run.retention.metrics())
        result.verdicts = success.check(success.parse_criteria(run.config.success), result.metrics)
        text = report_md.render(run.modality.name, run.reports, result.verdicts, run.run_dir, audit_line(run),
                                run.retention)
        atomic_write_text(run.ctx.path("report.md"), text)
        retained = [r for r in (run.retention.start, run.retention.trained) if r is not None] if run.retention else []
        report_md.write_reports_json([*run.reports, *retained], run.ctx.path(report_md.REPORTS_JSON))


class Report:
    """After export, on the main process of a run that evaluated: ``report.html`` (which can then
    say where the export is) and the verdict in the log."""

    name = "report"

    def applies(self, run: Run) -> bool:
        return run.selected("evaluate") and run.is_main

    def __call__(self, run: Run) -> None:
        from framework.evaluation import html_report
        from framework.training import latest_checkpoint

        checkpoint = Path(run.config.checkpoint) if run.config.checkpoint and not run.selected("train") else \
            latest_checkpoint(run.run_dir)
        page = html_report.RunReport(
            modality=run.modality.name, run_dir=run.run_dir, reports=run.reports, verdicts=run.result.verdicts,
            enforce=run.result.enforce_success, config_yaml=run.ctx.config_yaml, retention=run.retention,
            checkpoint=checkpoint, export_dir=run.run_dir / "export" if run.selected("export") else None)
        say_verdict(run.result, html_report.write(page))


def say_verdict(result: RunResult, report_path: Path) -> None:
    """Log whether the run is fit to ship, and which criteria failed by how much."""
    if result.fit_to_ship is None:
        log.info("evaluation: %s (no success criteria set) -> %s", brief(result.metrics), report_path)
        return
    failed = [f"{v.criterion.metric} {v.value} (needs {v.criterion.op} {v.criterion.threshold:g})"
              for v in result.verdicts if not v.passed]
    if failed:
        code = f" (exit code {success.NOT_FIT_EXIT_CODE})" if result.enforce_success else " (not enforced)"
        log.warning("NOT fit to ship%s: %s -> %s", code, "; ".join(failed), report_path)
    else:
        log.info("fit to ship: all %d success criteria met -> %s", len(result.verdicts), report_path)


def brief(metrics: dict[str, float]) -> str:
    """The first few metrics as ``name=value`` for a log line."""
    return ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:6])
