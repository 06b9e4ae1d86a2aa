"""One job: build the typed :class:`~framework.stage.Run` from the composed config, then run the pipeline.

:func:`run` is what ``python -m framework`` calls once per job (and what tests call directly). It
knows no modality by name: everything modality-specific goes through the selected
:class:`~framework.modality.Modality`, everything cross-cutting through the plugin facade. The
pipeline is data: :data:`PIPELINE` lists the stage objects in order, each deciding from the
config's ``stages=[...]`` (and what earlier stages found) whether it runs.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from framework.annotation.stage import Preannotate
from framework.config import STAGES, FrameworkConfig, typed_section
from framework.data.stage import Audit, ModelAudit
from framework.errors import FrameworkError
from framework.evaluation import success
from framework.evaluation.stage import Evaluate, Report, RetentionStart
from framework.hookspecs import RunInfo
from framework.instantiate import (check_allowed_targets, check_remote_code, check_targets, event_observer,
                                   instantiate)
from framework.modality import RunContext
from framework.plugins import Plugins, load_plugins
from framework.serving import Export
from framework.stage import (LOG_FILE, BuildTask, LoadData, ModalityFailure, Run, RunResult, Stage, Summary,
                             status_of)
from framework.training.stage import GatherWeights, LoadTrainedWeights, Train

__all__ = ["LOG_FILE", "PIPELINE", "ModalityFailure", "RunResult", "prepare", "run"]

log = logging.getLogger(__name__)

#: Every stage of a run, in order. ``stages=[...]`` selects among audit, train, evaluate,
#: preannotate and export; the others follow from those (the task is built when anything needs
#: it, trained weights are loaded when nothing trains them) and ``summary.json`` is always written.
PIPELINE: tuple[Stage, ...] = (
    LoadData(), Audit(), BuildTask(), RetentionStart(), Train(), LoadTrainedWeights(), GatherWeights(),
    ModelAudit(), Evaluate(), Preannotate(), Export(), Report(),
)


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

    check_run_dir(run_dir)
    job = prepare(cfg, run_dir, plugins or load_plugins(), overrides or [], base_dir=base_dir)
    lock = lock_run_dir(run_dir) if job.is_main else None  # ranks share rank 0's run dir
    try:
        return _run_locked(job)
    finally:
        if lock is not None:
            lock.release()


def prepare(cfg: DictConfig, run_dir: Path, plugins: Plugins, overrides: list[str], *,
            base_dir: Path | None = None) -> Run:
    """Check a composed config and build the typed :class:`~framework.stage.Run`, before any stage.

    Called by :func:`run` first (and by ``framework.testing.prepared``). The run holds the typed
    config (the modality's own sections as its dataclasses), the selected modality, the
    :class:`RunContext` its methods receive and the stages to run. Raises
    :class:`FrameworkError` for no or an unknown modality, a malformed success criterion, an
    unknown stage, a bad trainer section or a ``_target_`` outside ``allowed_targets``.
    """
    from framework.training.distributed import init_distributed

    if cfg.get("modality") is None or "name" not in cfg.modality:
        names = ", ".join(plugins.modalities()) or "none installed"
        raise FrameworkError(f"no modality selected: add +modality=NAME (installed: {names})")
    modality = plugins.modality(cfg.modality.name)
    allowed = check_allowed_targets(cfg.get("allowed_targets") or [], overrides)
    check_targets(cfg, allowed)
    check_remote_code(cfg, overrides)  # a config file may not let a model directory run its own code
    success.parse_criteria(cfg.success)  # a malformed threshold fails before any work is done
    stages = tuple(cfg.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise FrameworkError(f"unknown stage(s) {unknown}; valid stages: {', '.join(STAGES)} (e.g. stages=[audit])")
    config: FrameworkConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    if "train" in stages:
        from framework.training.config import validate_trainer

        validate_trainer(config.trainer)
    sections = {name: OmegaConf.to_object(typed_section(cfg, name, schema))
                for name, schema in modality.sections.items()}
    # A section the modality declares no schema for stays a config node (attribute access, as before).
    config.modality = sections.get("modality", cfg.modality)
    config.model = sections.get("model", cfg.get("model"))
    ctx: RunContext[Any, Any] = RunContext(
        run_dir=run_dir, modality=config.modality, model=config.model, data=config.data, seed=config.seed,
        plugins=plugins, config_yaml=OmegaConf.to_yaml(cfg, resolve=True), allowed_targets=allowed)
    rank, world_size, _ = init_distributed()
    info = RunInfo(run_dir=run_dir, modality=modality.name, name=run_dir.name, config_yaml=ctx.config_yaml,
                   rank=rank, world_size=world_size)
    return Run(config=config, modality=modality, ctx=ctx, info=info, stages=stages,
               base_dir=base_dir or Path.cwd(), overrides=list(overrides))


def _run_locked(job: Run) -> RunResult:
    started = time.perf_counter()
    job.result = RunResult(status="completed", enforce_success=job.config.evaluation.enforce_success)
    with _observers(job):
        job.plugins.run_start(job.info)
        try:
            for stage in PIPELINE:
                if stage.applies(job):
                    stage_started = time.perf_counter()
                    try:
                        stage(job)
                    finally:
                        job.result.seconds[stage.name] = time.perf_counter() - stage_started
        except BaseException as exc:
            job.result.status = status_of(exc)
            raise
        finally:
            job.plugins.run_end(job.info, job.result.status, job.result.metrics)
            Summary()(job)
    took = ", ".join(f"{name} {t:.1f}" for name, t in job.result.seconds.items())
    log.info("run finished in %.1fs (%s): %s", time.perf_counter() - started, took, job.run_dir)
    return job.result


@contextmanager
def _observers(job: Run) -> Iterator[None]:
    """Register tracking backends and configured callbacks as plugins for this run only."""
    from framework.tracking import open_trackers

    observers: list[Any] = list(open_trackers(job.config.tracking, job.info, job.base_dir))
    observers += [instantiate(node, job.ctx.allowed_targets, kind=event_observer)
                  for node in job.config.callbacks.values()]
    names = [job.plugins.pm.register(obs) for obs in observers]
    try:
        yield
    finally:
        for name in names:
            if name is not None:
                job.plugins.pm.unregister(name=name)
