"""The evaluation stages of a run: retention with the starting weights, per-split evaluation with
the success criteria, and the closing report page with the verdict."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.atomic import atomic_write_text
from framework.errors import FrameworkError
from framework.evaluation import success
from framework.evaluation.types import EvalReport, flatten
from framework.stage import Run, RunResult

if TYPE_CHECKING:
    from framework.evaluation.benchmarks import Scores

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


def run_benchmarks(run: Run) -> "Scores":
    """The lm-eval tasks of ``evaluation.benchmarks`` on the task's weights as they are now; the
    tasks scored, their sizes and sources are recorded on ``run.benchmarks``."""
    from framework.evaluation.benchmarks import BenchmarkOptions, Benchmarks, run_benchmarks as score

    from framework.training.fsdp import root_gathered

    options = BenchmarkOptions.from_config(run.config.evaluation, run.config.seed)
    task = run.sharded_task if run.sharded_task is not None else run.require(run.task, "task")
    model = run.call("benchmark_model", task)
    if model is None:
        raise FrameworkError(f"evaluation.benchmarks={list(options.tasks)}: modality {run.modality.name!r} has no "
                             f"language model to benchmark (its benchmark_model returns None); remove "
                             f"evaluation.benchmarks for this modality")
    with run.scratch_outputs(), root_gathered(task):
        scores, samples, sources = score(model, options)
    if run.benchmarks is None:
        run.benchmarks = Benchmarks(tasks=list(options.tasks))
    run.benchmarks.samples.update(samples)
    run.benchmarks.sources.update(sources)
    return scores


class RetentionStart:
    """``evaluation.retention`` or ``evaluation.benchmarks`` set, on the main process of a run
    that evaluates (on every rank when training shards the model, since every rank then scores
    with the trained weights): read the retention set; when the run trains, rank 0 scores the
    retention set and (with ``evaluation.benchmark_start``) the benchmarks with the starting
    weights first (those of
    ``trainer.init_from`` when fine-tuning, which the engine loads again when training starts)."""

    name = "retention (starting weights)"

    def applies(self, run: Run) -> bool:
        cfg = run.config.evaluation
        return run.selected("evaluate") and (run.is_main or run.shards_model) and \
            (cfg.retention is not None or bool(cfg.benchmarks))

    def __call__(self, run: Run) -> None:
        from framework.evaluation.retention import START_SPLIT, load_retention
        from framework.training import load_trained_weights

        cfg = run.config.evaluation
        run.retention = load_retention(cfg, run.require(run.data, "data"), run.ctx.data)
        start_benchmarks = bool(cfg.benchmarks) and cfg.benchmark_start
        if not run.selected("train") or not run.is_main or (run.retention is None and not start_benchmarks):
            return
        init_from = run.config.trainer.init_from
        if init_from:
            load_trained_weights(run.require(run.task, "task"), Path(init_from), what="trainer.init_from")
        if run.retention is not None:
            run.retention.start = evaluate_split(run, START_SPLIT)
            log.info("retention set, starting weights: %s", brief(run.retention.start.metrics))
        if start_benchmarks:
            start = run_benchmarks(run)
            run.require(run.benchmarks, "benchmarks").start = start
            log.info("benchmarks, starting weights: %s", brief(_flat(start)))


class Evaluate:
    """``stages=[evaluate, ...]``, on the main process (every rank holds the same weights), or on
    every rank together when training sharded the model (FSDP2: each forward pass gathers the
    shards; the other ranks' files go to a scratch directory): each split of
    ``evaluation.splits`` that has data, the extra sets of ``evaluation.sets``, temperature
    scaling when configured, the retention set and the benchmarks with the trained weights, the
    success criteria; rank 0 writes ``report.md`` and ``eval/reports.json``."""

    name = "evaluate"

    def applies(self, run: Run) -> bool:
        return run.selected("evaluate") and (run.is_main or run.sharded_task is not None)

    def __call__(self, run: Run) -> None:
        from framework.data.stage import audit_line
        from framework.evaluation import report as report_md
        from framework.evaluation.retention import SPLIT as RETENTION_SPLIT
        from framework.evaluation.sets import load_sets

        data, cfg = run.require(run.data, "data"), run.config.evaluation
        for split in cfg.splits:
            if not data.splits.get(split):
                log.info("evaluate: no %r split, skipped", split)
                continue
            run.reports.append(evaluate_split(run, split))
        if not run.reports:
            raise FrameworkError(f"nothing to evaluate: none of the splits {list(cfg.splits)} has data; "
                                 f"set data.val / data.test or evaluation.splits")
        run.sets = load_sets(cfg, data, run.ctx.data)
        run.set_reports = [evaluate_split(run, extra.name) for extra in run.sets]
        if cfg.calibration.temperature_scaling:
            scale_temperature(run)
        if run.retention is not None:
            run.retention.trained = evaluate_split(run, RETENTION_SPLIT)
        # Every rank scores the benchmarks when the model is sharded: each forward pass is collective.
        trained = run_benchmarks(run) if cfg.benchmarks else None
        if not run.is_main:
            return
        result = run.result
        result.metrics = flatten(run.reports)
        for report in run.set_reports:  # always prefixed, even when no split before them had data
            result.metrics.update({f"{report.split}/{k}": v for k, v in report.metrics.items()})
        if run.retention is not None:
            result.metrics.update(run.retention.metrics())
        if trained is not None:
            benchmarks = run.require(run.benchmarks, "benchmarks")
            benchmarks.trained = trained
            benchmarks.write(run.run_dir)
            result.metrics.update(benchmarks.metrics())
            log.info("benchmarks: %s", brief(_flat(trained)))
        result.verdicts = success.check(success.parse_criteria(run.config.success), result.metrics)
        reports = [*run.reports, *run.set_reports]
        text = report_md.render(run.modality.name, reports, result.verdicts, run.run_dir, audit_line(run),
                                run.retention, run.benchmarks, sources={s.name: s.source for s in run.sets},
                                merged=merged_corrections(run), weights=result.weights)
        atomic_write_text(run.ctx.path("report.md"), text)
        retained = [r for r in (run.retention.start, run.retention.trained) if r is not None] if run.retention else []
        report_md.write_reports_json([*reports, *retained], run.ctx.path(report_md.REPORTS_JSON))


def scale_temperature(run: Run) -> None:
    """Fit the calibration temperature on ``val`` and add the scaled figures to every report.

    The temperature is left in ``run.ctx.temperature`` for the export. Raises a
    :class:`FrameworkError` when there is no ``val`` split or the modality's predictions carry no
    class probabilities.
    """
    from framework.evaluation import calibration
    from framework.evaluation.classification import add_calibration

    data, task = run.require(run.data, "data"), run.require(run.task, "task")
    if not data.splits.get("val"):
        raise FrameworkError("evaluation.calibration.temperature_scaling=true fits the temperature on the val split, "
                             "which has no data; set data.val or turn temperature scaling off")
    labeled = calibration.labeled_scores(run.call("predict", task, data.records("val"), "val"))
    if labeled is None or len(labeled[1]) == 0:
        raise FrameworkError(f"evaluation.calibration.temperature_scaling=true: the {run.modality.name} modality's "
                             f"predictions carry no class probabilities (Predictions.scores) for labeled val items, "
                             f"so there is nothing to calibrate; turn temperature scaling off")
    temperature = calibration.fit_temperature(*labeled)
    run.ctx.temperature = temperature
    log.info("calibration: temperature %.4f fitted on val (%d items)", temperature, len(labeled[1]))
    for report in [*run.reports, *run.set_reports]:
        predictions = run.call("predict", task, data.records(report.split), report.split)
        add_calibration(report, predictions, run_dir=run.run_dir, out_dir=run.run_dir / "eval",
                        temperature=temperature)


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
            modality=run.modality.name, run_dir=run.run_dir, reports=[*run.reports, *run.set_reports],
            sources={s.name: s.source for s in run.sets}, verdicts=run.result.verdicts,
            enforce=run.result.enforce_success, config_yaml=run.ctx.config_yaml, retention=run.retention,
            benchmarks=run.benchmarks,
            checkpoint=checkpoint, weights=run.result.weights, export_dir=run.run_dir / "export" if run.selected("export") else None,
            merged=merged_corrections(run))
        say_verdict(run.result, html_report.write(page))


def merged_corrections(run: Run) -> dict[str, Any] | None:
    """What reviewed corrections the run's training split holds (``framework.data.provenance``)."""
    from framework.data.provenance import merged_summary

    return merged_summary(run.data.records("train")) if run.data is not None else None


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


def _flat(scores: "Scores") -> dict[str, float]:
    return {f"{task}/{name}": v for task, metrics in scores.items() for name, v in metrics.items()
            if not name.endswith("_stderr")}


def brief(metrics: dict[str, float]) -> str:
    """The first few metrics as ``name=value`` for a log line."""
    return ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:6])
