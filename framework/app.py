"""One run: audit, train, evaluate, export, as the config's ``stages`` select.

:func:`run` is what ``python -m framework`` calls once per job (and what tests call directly). It
knows no modality by name: everything modality-specific goes through the selected
:class:`~framework.modality.Modality`, everything cross-cutting through the plugin facade.
"""

from __future__ import annotations

import logging
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from framework.atomic import atomic_write_json, atomic_write_text, replace_dir
from framework.config import STAGES, typed_section
from framework.data.records import DataBundle
from framework.errors import FrameworkError, first_line
from framework.evaluation import html_report
from framework.evaluation import report as report_md
from framework.evaluation import success
from framework.evaluation.retention import START_SPLIT, SPLIT as RETENTION_SPLIT, Retention, load_retention
from framework.evaluation.types import EvalReport, flatten
from framework.hookspecs import RunInfo
from framework.instantiate import check_allowed_targets, check_targets, event_observer, instantiate
from framework.modality import Modality, RunContext
from framework.plugins import Plugins, load_plugins

log = logging.getLogger(__name__)


LOG_FILE = "run.log"  # the run's log (Hydra's job log); tracebacks of modality failures land here


class ModalityFailure(Exception):
    """A modality method raised: framed as one line naming the modality, its package and the method.

    ``python -m framework`` prints the message and exits 1; the full traceback is in the run's
    ``run.log``. The original exception is the ``__cause__``.
    """

    def __init__(self, message: str, method: str) -> None:
        super().__init__(message)
        self.method = method


@dataclass
class RunResult:
    """What one run produced; also written as ``summary.json`` in the run dir."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    verdicts: list[success.Verdict] = field(default_factory=list)
    enforce_success: bool = True  # evaluation.enforce_success: a failed criterion fails the command

    @property
    def fit_to_ship(self) -> bool | None:
        """``None`` without success criteria, else whether every criterion passed."""
        return all(v.passed for v in self.verdicts) if self.verdicts else None


def run(cfg: DictConfig, run_dir: Path, *, plugins: Plugins | None = None, base_dir: Path | None = None,
        overrides: list[str] | None = None) -> RunResult:
    """Run the selected stages of one job and return its result.

    Args:
        cfg: The composed config (``conf/config.yaml`` + ``+modality=NAME`` + overrides).
        run_dir: Where this job writes everything.
        plugins: The plugin facade; loaded from entry points when omitted.
        base_dir: The directory the user launched from (shared stores such as MLflow's live there).
        overrides: The job's command-line overrides, recorded in ``summary.json``; the only
            place ``allowed_targets`` is accepted from (docs/security.md).

    Every process is seeded before any modality method runs, and the main process holds the run
    dir's lock for the whole run.

    Raises:
        FrameworkError: A problem the user fixes (config, data, a run dir in use or not writable).
        ModalityFailure: A modality method raised; the traceback is in ``run_dir/run.log``.
    """
    from framework.training.rundir import check_run_dir, lock_run_dir

    plugins = plugins or load_plugins()
    check_run_dir(run_dir)
    modality, ctx, stages = prepare(cfg, run_dir, plugins, overrides or [])
    info = _run_info(ctx, modality)
    lock = lock_run_dir(run_dir) if info.is_main else None  # ranks share rank 0's run dir
    try:
        return _run_locked(cfg, ctx, modality, stages, info, base_dir or Path.cwd(), overrides or [])
    finally:
        if lock is not None:
            lock.release()


def _run_locked(cfg: DictConfig, ctx: RunContext, modality: Modality, stages: list[str], info: RunInfo,
                base_dir: Path, overrides: list[str]) -> RunResult:
    result = RunResult(status="failed")
    with _observers(cfg, info, ctx.plugins, base_dir, ctx.allowed_targets):
        ctx.plugins.run_start(info)
        try:
            result = _stages(cfg, ctx, modality, stages, info)
        except BaseException as exc:
            result.status = _status_of(exc)
            raise
        finally:
            ctx.plugins.run_end(info, result.status, result.metrics)
            _write_summary(ctx.run_dir, result, overrides)
    return result


def prepare(cfg: DictConfig, run_dir: Path, plugins: Plugins,
            overrides: list[str]) -> tuple[Modality, RunContext, list[str]]:
    """Check a composed config and build what :func:`run` hands the modality, before any stage.

    Called by :func:`run` first (and by ``framework.testing.prepared``). Returns the selected
    modality, the :class:`RunContext` its methods receive (typed sections, data config, seed,
    the resolved config YAML) and the stages to run. Raises :class:`FrameworkError` for no or an
    unknown modality, a malformed success criterion, an unknown stage, a bad trainer section or a
    ``_target_`` outside ``allowed_targets``.
    """
    if cfg.get("modality") is None or "name" not in cfg.modality:
        names = ", ".join(plugins.modalities()) or "none installed"
        raise FrameworkError(f"no modality selected: add +modality=NAME (installed: {names})")
    modality = plugins.modality(cfg.modality.name)
    allowed = check_allowed_targets(cfg.get("allowed_targets") or [], overrides)
    check_targets(cfg, allowed)
    success.parse_criteria(cfg.success)  # a malformed threshold fails before any work is done
    stages = list(cfg.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise FrameworkError(f"unknown stage(s) {unknown}; valid stages: {', '.join(STAGES)} (e.g. stages=[audit])")
    if "train" in stages:
        from framework.training.config import validate_trainer

        validate_trainer(OmegaConf.to_object(cfg.trainer))
    sections = {name: OmegaConf.to_object(typed_section(cfg, name, schema))
                for name, schema in modality.sections.items()}
    ctx = RunContext(
        run_dir=run_dir,
        modality=sections.get("modality", cfg.modality),
        model=sections.get("model", cfg.get("model")),
        data=OmegaConf.to_object(cfg.data),
        seed=int(cfg.seed),
        plugins=plugins,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
    )
    ctx.allowed_targets = allowed
    return modality, ctx, stages


def _run_info(ctx: RunContext, modality: Modality) -> RunInfo:
    from framework.training.distributed import init_distributed

    rank, world_size, _ = init_distributed()
    return RunInfo(run_dir=ctx.run_dir, modality=modality.name, name=ctx.run_dir.name,
                   config_yaml=ctx.config_yaml, rank=rank, world_size=world_size)


@contextmanager
def _observers(cfg: DictConfig, info: RunInfo, plugins: Plugins, base_dir: Path,
               allowed: list[str]) -> Iterator[None]:
    """Register tracking backends and configured callbacks as plugins for this run only."""
    from framework.tracking import open_trackers

    tracking = OmegaConf.to_object(cfg.tracking)
    observers: list[Any] = list(open_trackers(tracking, info, base_dir))
    observers += [instantiate(node, allowed, kind=event_observer) for node in (cfg.get("callbacks") or {}).values()]
    names = [plugins.pm.register(obs) for obs in observers]
    try:
        yield
    finally:
        for name in names:
            if name is not None:
                plugins.pm.unregister(name=name)


@contextmanager
def _calling(modality: Modality, method: str, ctx: RunContext) -> Iterator[None]:
    """Frame an exception raised inside a modality method (see :class:`ModalityFailure`).

    Errors that are already explained pass through unchanged: a :class:`FrameworkError` (a problem
    the user fixes), an interruption, a stopped training run, a failed gate.
    """
    from framework.training import Interrupted, TrainingStopped

    try:
        yield
    except (FrameworkError, Interrupted, TrainingStopped, ModalityFailure, KeyboardInterrupt):
        raise
    except Exception as exc:
        from framework.atomic import no_space_left

        if no_space_left(exc):
            raise
        package = _package_of(modality)
        log_path = ctx.run_dir / LOG_FILE
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"modality {modality.name} (package {package}) failed in {method}:\n{traceback.format_exc()}\n")
        first = first_line(exc)
        raise ModalityFailure(
            f"modality {modality.name} (package {package}) failed in {method}: {type(exc).__name__}"
            f"{': ' + first if first else ''} (full traceback in {log_path})", method) from exc


def _package_of(modality: Modality) -> str:
    """The installed distribution that ships ``modality``'s class (its top-level module otherwise)."""
    from importlib.metadata import packages_distributions

    module = type(modality).__module__.split(".")[0]
    return ", ".join(packages_distributions().get(module, [])) or module


def _seed(ctx: RunContext) -> None:
    """Seed every generator (``seed + rank``) so a modality method's randomness is the config's."""
    from framework.training.distributed import init_distributed
    from framework.training.seed import seed_everything

    seed_everything(ctx.seed + init_distributed()[0])


def _stages(cfg: DictConfig, ctx: RunContext, modality: Modality, stages: list[str], info: RunInfo) -> RunResult:
    started = time.perf_counter()
    _seed(ctx)
    with _calling(modality, "load_data", ctx):
        data = modality.load_data(ctx)
    ctx.classes = list(data.classes)
    log.info("data: %s records per split, %d quarantined", data.counts(), len(data.quarantine))
    audit = _audit(cfg, ctx, modality, data) if "audit" in stages else None
    result = RunResult(status="completed")
    # Checks that score the data with the model run once it is trained (or loaded from checkpoint=).
    audit_with_model = audit is not None and bool(audit.pending) and ("train" in stages or bool(cfg.get("checkpoint")))
    if stages == ["audit"] and not audit_with_model:
        return result
    _seed(ctx)  # the initial weights depend on the seed alone, whatever ran before
    with _calling(modality, "build_task", ctx):
        task = modality.build_task(ctx, data)
    retention = _retention_start(cfg, ctx, modality, task, data, info, stages)
    if "train" in stages:
        _train(cfg, ctx, modality, task, data, info)
    elif {"evaluate", "preannotate", "export"} & set(stages) or audit_with_model:
        _load_trained_weights(cfg, ctx, task)
    if audit_with_model and info.is_main:
        _model_audit(cfg, ctx, modality, data, task, audit)
    audit_line = _audit_line(audit) if audit is not None else None
    if stages == ["audit"]:
        return result
    result.enforce_success = bool(cfg.evaluation.enforce_success)
    if "evaluate" in stages and info.is_main:  # every rank holds the same weights: evaluate once
        reports = _evaluate(cfg, ctx, modality, task, data, info)
        result.metrics = flatten(reports)
        if retention is not None:
            retention.trained = _evaluate_split(ctx, modality, task, data, info, RETENTION_SPLIT)
            result.metrics.update(retention.metrics())
        result.verdicts = success.check(success.parse_criteria(cfg.success), result.metrics)
        text = report_md.render(modality.name, reports, result.verdicts, ctx.run_dir, audit_line, retention)
        atomic_write_text(ctx.path("report.md"), text)
        extra = [r for r in (retention.start, retention.trained) if r is not None] if retention else []
        report_md.write_reports_json([*reports, *extra], ctx.path(report_md.REPORTS_JSON))
    if "preannotate" in stages and info.is_main:
        _preannotate(ctx, modality, task, data)
    if "export" in stages and info.is_main:
        _export(ctx, modality, task)
    if "evaluate" in stages and info.is_main:  # after export, so the page can say where it is
        html = _write_html(cfg, ctx, modality, reports, result, retention, stages)
        _say_verdict(result, html)
    log.info("run finished in %.1fs: %s", time.perf_counter() - started, ctx.run_dir)
    return result


def _export(ctx: RunContext, modality: Modality, task: Any) -> None:
    """Export into a temp directory and publish it whole, so ``export/`` is never half-written."""
    import os
    import shutil

    final = ctx.run_dir / "export"
    tmp = ctx.run_dir / f".tmp-export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with _calling(modality, "export", ctx):
            written = modality.export(ctx, task, tmp)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %d file(s) to %s", len(written), final)


def _audit(cfg: DictConfig, ctx: RunContext, modality: Modality, data: DataBundle) -> Any:
    from framework.data.audit import enforce, run_audit

    checks = ctx.plugins.quality_checks(modality.name)
    audit = run_audit(data, ctx.data, modality=modality.name, extra_checks=checks, out_dir=ctx.run_dir / "audit",
                      label_type=data.label_type_for(modality.label_type))
    enforce(audit, enforce=bool(cfg.data.gates.enforce))
    return audit


def _model_audit(cfg: DictConfig, ctx: RunContext, modality: Modality, data: DataBundle, task: Any, audit: Any) -> None:
    """The checks that score the data with the trained model; a failed gate stops before evaluation."""
    from framework.data.audit import enforce, run_model_checks

    names = [c.name for c in audit.pending]
    run_model_checks(audit, data, ctx.data, modality=modality.name, model=task, out_dir=ctx.run_dir / "audit", run=ctx)
    for name in names:
        log.info("audit %s: %s", name, audit.result(name).summary)
    enforce(audit, enforce=bool(cfg.data.gates.enforce))


def _audit_line(audit: Any) -> str:
    failed = [r.name for r in audit.results if not r.passed]
    return f"{len(audit.results)} checks, " + (f"failed: {', '.join(failed)}" if failed else "all passed") + \
        " (see audit/datacard.md)"


def _train(cfg: DictConfig, ctx: RunContext, modality: Modality, task: Any, data: DataBundle, info: RunInfo) -> None:
    from framework.training import Engine

    trainer = OmegaConf.to_object(cfg.trainer)
    with Engine(trainer, info, events=ctx.plugins, seed=ctx.seed) as engine:
        with _calling(modality, "train", ctx):
            modality.train(ctx, engine, task, data)
        ctx.engine = engine


def _load_trained_weights(cfg: DictConfig, ctx: RunContext, task: Any) -> None:
    from framework.training import latest_checkpoint, load_model_weights

    source = Path(cfg.checkpoint) if cfg.get("checkpoint") else latest_checkpoint(ctx.run_dir)
    if source is None:
        raise FrameworkError(
            "evaluate/export without the train stage needs trained weights: set checkpoint=PATH to a "
            "checkpoint directory (run_dir/checkpoints/step_...), or add train to stages"
        )
    try:
        ema = load_model_weights(task, source)  # verified against its manifest, finite
    except RuntimeError as err:  # missing/unexpected keys or shapes: a checkpoint of another model
        raise FrameworkError(f"checkpoint={source}: its weights do not fit this model "
                             f"({first_line(err, type(err).__name__)}); "
                             "was it trained with another model config?") from None
    log.info("loaded %sweights from %s", "EMA " if ema else "", source)


def _evaluate(cfg: DictConfig, ctx: RunContext, modality: Modality, task: Any, data: DataBundle,
              info: RunInfo) -> list[EvalReport]:
    reports = []
    for split in cfg.evaluation.splits:
        if not data.splits.get(split):
            log.info("evaluate: no %r split, skipped", split)
            continue
        reports.append(_evaluate_split(ctx, modality, task, data, info, split))
    if not reports:
        raise FrameworkError(f"nothing to evaluate: none of the splits {list(cfg.evaluation.splits)} has data; "
                             f"set data.val / data.test or evaluation.splits")
    return reports


def _evaluate_split(ctx: RunContext, modality: Modality, task: Any, data: DataBundle, info: RunInfo,
                    split: str) -> EvalReport:
    """The modality's report of one split, with the plugins' metrics merged in; observers notified."""
    with _calling(modality, "evaluate", ctx):
        report = modality.evaluate(ctx, task, data, split)
    extra_metrics = ctx.plugins.metrics(modality.name)
    if extra_metrics:
        with _calling(modality, "predict", ctx):
            predictions = modality.predict(ctx, task, data.records(split), split)
        for metric in extra_metrics:
            report.merge_metrics(metric.compute(predictions), source=metric.name)
    ctx.plugins.evaluated(info, -1, split, report.metrics)
    return report


def _retention_start(cfg: DictConfig, ctx: RunContext, modality: Modality, task: Any, data: DataBundle,
                     info: RunInfo, stages: list[str]) -> Retention | None:
    """Read ``evaluation.retention``; when the run trains, score it with the starting weights (those
    of ``trainer.init_from`` when fine-tuning, which the engine loads again when training starts)."""
    if "evaluate" not in stages or not info.is_main:
        return None
    retention = load_retention(cfg.evaluation, data, ctx.data)
    if retention is None or "train" not in stages:
        return retention
    if cfg.trainer.get("init_from"):
        from framework.training import load_model_weights

        try:
            load_model_weights(task, Path(cfg.trainer.init_from))
        except RuntimeError as err:
            raise FrameworkError(f"trainer.init_from={cfg.trainer.init_from}: its weights do not fit this model "
                                 f"({first_line(err, type(err).__name__)})") from None
    retention.start = _evaluate_split(ctx, modality, task, data, info, START_SPLIT)
    log.info("retention set, starting weights: %s", _brief(retention.start.metrics))
    return retention


def _write_html(cfg: DictConfig, ctx: RunContext, modality: Modality, reports: list[EvalReport], result: RunResult,
                retention: Retention | None, stages: list[str]) -> Path:
    from framework.training import latest_checkpoint

    checkpoint = Path(cfg.checkpoint) if cfg.get("checkpoint") and "train" not in stages else \
        latest_checkpoint(ctx.run_dir)
    page = html_report.RunReport(
        modality=modality.name, run_dir=ctx.run_dir, reports=reports, verdicts=result.verdicts,
        enforce=result.enforce_success, config_yaml=ctx.config_yaml, retention=retention, checkpoint=checkpoint,
        export_dir=ctx.run_dir / "export" if "export" in stages else None)
    return html_report.write(page)


def _preannotate(ctx: RunContext, modality: Modality, task: Any, data: DataBundle) -> None:
    """Predict on ``data.unlabeled`` and write Label Studio pre-annotations for annotators to correct."""
    from framework.annotation.review import export_preannotations
    from framework.data.readers import read_manifest

    if not ctx.data.unlabeled:
        raise FrameworkError("stage preannotate needs items to label: set data.unlabeled=<manifest of unlabeled items>")
    records, quarantined = read_manifest(data.root / ctx.data.unlabeled, root=data.root, split="unlabeled",
                                         format=ctx.data.unlabeled_format, slices=tuple(ctx.data.slices),
                                         allow_outside_root=ctx.data.allow_outside_root)
    for item in quarantined:
        log.warning("preannotate: skipped %s (%s): %s", item.source, item.reason, item.detail)
    with _calling(modality, "predict", ctx):
        predictions = modality.predict(ctx, task, records, "unlabeled")
    path = export_preannotations(predictions, records, ctx.path("annotation", "preannotations.json"),
                                 label_type=data.label_type_for(modality.label_type), model_version=ctx.run_dir.name,
                                 root=data.root)
    log.info("pre-annotations for %d items: %s (import into Label Studio)", len(records), path)


def _say_verdict(result: RunResult, report_path: Path) -> None:
    if result.fit_to_ship is None:
        log.info("evaluation: %s (no success criteria set) -> %s", _brief(result.metrics), report_path)
        return
    failed = [f"{v.criterion.metric} {v.value} (needs {v.criterion.op} {v.criterion.threshold:g})"
              for v in result.verdicts if not v.passed]
    if failed:
        code = f" (exit code {success.NOT_FIT_EXIT_CODE})" if result.enforce_success else " (not enforced)"
        log.warning("NOT fit to ship%s: %s -> %s", code, "; ".join(failed), report_path)
    else:
        log.info("fit to ship: all %d success criteria met -> %s", len(result.verdicts), report_path)


def _brief(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:6])


def _status_of(exc: BaseException) -> str:
    from framework.data.audit import GateFailure
    from framework.training import Interrupted

    if isinstance(exc, GateFailure):
        return "refused"
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return "interrupted"
    return "failed"


def _write_summary(run_dir: Path, result: RunResult, overrides: list[str]) -> None:
    summary = {
        "status": result.status,
        "overrides": overrides,
        "metrics": result.metrics,
        "fit_to_ship": result.fit_to_ship,
        "enforce_success": result.enforce_success,
        "success": [{"metric": v.criterion.metric, "required": f"{v.criterion.op}{v.criterion.threshold:g}",
                     "value": v.value, "passed": v.passed} for v in result.verdicts],
    }
    atomic_write_json(run_dir / "summary.json", summary)
