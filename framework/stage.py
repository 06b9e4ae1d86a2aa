"""One run as data: the typed :class:`Run` every stage reads and fills, and the :class:`Stage` contract.

A run is a fixed pipeline of stage objects (:data:`framework.app.PIPELINE`); each one says whether
it applies to this run (``stages=[...]`` in the config, and what earlier stages found) and does
its one job on the :class:`Run`. The stages live in the package they belong to:
``framework.data.stage`` (audit), ``framework.training.stage`` (train, or load trained weights),
``framework.evaluation.stage`` (retention, evaluate, report), ``framework.annotation.stage``
(pre-annotation), ``framework.serving`` (export); loading the data, building the task and the
summary are the run's own (here).
"""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, TypeVar

from framework.atomic import atomic_write_json
from framework.errors import FrameworkError, first_line
from framework.evaluation import success

if TYPE_CHECKING:
    from torch import nn

    from framework.config import FrameworkConfig
    from framework.data.audit import AuditReport
    from framework.data.records import DataBundle
    from framework.evaluation.benchmarks import Benchmarks
    from framework.evaluation.retention import Retention
    from framework.evaluation.sets import EvalSet
    from framework.evaluation.types import EvalReport
    from framework.hookspecs import RunInfo
    from framework.modality import Modality, RunContext
    from framework.plugins import Plugins

log = logging.getLogger(__name__)

T = TypeVar("T")

LOG_FILE = "run.log"  # the run's log (Hydra's job log); tracebacks of modality failures land here
SUMMARY_JSON = "summary.json"

#: ``RunResult.weights`` of a run that evaluated the configured model as built (no train stage, no
#: checkpoint): a released model's zero-shot figures, or an untrained reference.
STARTING_WEIGHTS = "starting weights, not trained"
#: ``RunResult.weights`` of a run whose train stage produced the weights it evaluated.
TRAINED_WEIGHTS = "trained in this run"


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
    """What one run produced; also written as ``summary.json`` in the run dir.

    Attributes:
        status: ``completed``, ``failed``, ``refused`` (a data gate stopped it) or ``interrupted``.
        metrics: Every evaluated figure, flattened (``val/accuracy``, ``retention/...``).
        verdicts: One per ``success:`` criterion.
        enforce_success: ``evaluation.enforce_success``: whether a failed criterion fails the command.
        weights: Which weights the evaluated model held: :data:`TRAINED_WEIGHTS`, ``checkpoint PATH``
            or :data:`STARTING_WEIGHTS`; empty before a stage that needs a model ran.
        seconds: Wall-clock seconds per stage that ran, by stage name, in pipeline order.
    """

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    verdicts: list[success.Verdict] = field(default_factory=list)
    enforce_success: bool = True
    weights: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fit_to_ship(self) -> bool | None:
        """``None`` without success criteria, else whether every criterion passed."""
        return all(v.passed for v in self.verdicts) if self.verdicts else None


@dataclass
class Run:
    """One job's typed state, built once from the composed config (``framework.app.prepare``).

    The setup fields are fixed for the run; the later ones are filled by the stages in pipeline
    order and read by the stages after them.

    Attributes:
        config: The whole typed config; ``config.modality`` / ``config.model`` are the modality's
            own section dataclasses.
        modality: The selected modality.
        ctx: What the modality's methods receive.
        info: The run's identity for hooks and the engine (rank, world size, run dir).
        stages: The stage names the config selected (``stages=[...]``).
        base_dir: The directory the user launched from (shared stores such as MLflow's live there).
        overrides: The job's command-line overrides, recorded in ``summary.json``.
        data: Every split, after the load stage.
        audit: The audit report, after the audit stage.
        task: The model with its loss, after the build stage. After training under FSDP2 it is
            sharded over the ranks, until rank 0 receives a whole copy for its own stages.
        sharded_task: Under FSDP2, after training: the sharded task, which every rank's forward
            passes use together (evaluation runs on every rank).
        retention: The retention set and its scores, when ``evaluation.retention`` is set.
        benchmarks: The lm-eval benchmark scores, when ``evaluation.benchmarks`` is set.
        reports: One report per evaluated split, after the evaluate stage.
        sets: The extra sets of ``evaluation.sets``, in config order, after the evaluate stage.
        set_reports: One report per extra set, in the same order.
        result: What the run produced so far.
    """

    config: "FrameworkConfig"
    modality: "Modality[Any, Any]"
    ctx: "RunContext[Any, Any]"
    info: "RunInfo"
    stages: tuple[str, ...]
    base_dir: Path = field(default_factory=Path.cwd)
    overrides: list[str] = field(default_factory=list)
    data: "DataBundle | None" = None
    audit: "AuditReport | None" = None
    task: "nn.Module | None" = None
    sharded_task: "nn.Module | None" = None
    retention: "Retention | None" = None
    benchmarks: "Benchmarks | None" = None
    reports: list["EvalReport"] = field(default_factory=list)
    sets: list["EvalSet"] = field(default_factory=list)
    set_reports: list["EvalReport"] = field(default_factory=list)
    result: RunResult = field(default_factory=lambda: RunResult(status="completed"))

    @property
    def run_dir(self) -> Path:
        return self.ctx.run_dir

    @property
    def plugins(self) -> "Plugins":
        return self.ctx.plugins

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that evaluates, exports and writes reports."""
        return self.info.is_main

    @property
    def shards_model(self) -> bool:
        """This run trains with FSDP2 over several processes: no rank will hold the whole trained
        model, so its forward passes are collectives every rank runs."""
        return self.selected("train") and self.config.trainer.distributed == "fsdp" and self.info.world_size > 1

    @contextmanager
    def scratch_outputs(self) -> Iterator[None]:
        """Within: on ranks other than 0, ``ctx.run_dir`` is a scratch directory, deleted after, so
        that modality methods every rank calls together (evaluation of a sharded model) leave
        rank 0's files alone. On rank 0 nothing changes."""
        if self.is_main:
            yield
            return
        import dataclasses
        import tempfile

        kept = self.ctx
        with tempfile.TemporaryDirectory(prefix=f"rank{self.info.rank}-") as scratch:
            self.ctx = dataclasses.replace(kept, run_dir=Path(scratch))
            try:
                yield
            finally:
                self.ctx = kept

    def selected(self, *names: str) -> bool:
        """Whether the config selected any of the stages ``names``."""
        return any(name in self.stages for name in names)

    @property
    def audit_needs_model(self) -> bool:
        """Audit checks wait for the model (``needs_model``), and this run has one: it trains, or
        loads ``checkpoint=``."""
        return self.audit is not None and bool(self.audit.pending) and \
            (self.selected("train") or bool(self.config.checkpoint))

    def require(self, value: T | None, what: str) -> T:
        """``value``, which an earlier stage must have set (a pipeline-order bug otherwise)."""
        if value is None:
            raise RuntimeError(f"run.{what} is not set: a stage that needs it runs before the one that makes it")
        return value

    def call(self, method: str, *args: Any) -> Any:
        """Call ``modality.<method>(ctx, *args)``, framing a crash as :class:`ModalityFailure`."""
        function: Callable[..., Any] = getattr(self.modality, method)
        with calling(self.modality, method, self.ctx):
            return function(self.ctx, *args)

    def seed(self) -> None:
        """Seed every generator (``seed + rank``) so a modality method's randomness is the config's."""
        from framework.training.seed import seed_everything

        seed_everything(self.ctx.seed + self.info.rank)


class Stage(Protocol):
    """One step of a run. Stages are stateless objects; everything they share is on the :class:`Run`.

    Attributes:
        name: Shown in logs.
    """

    name: str

    def applies(self, run: Run) -> bool:
        """Called in pipeline order, just before the stage would run; True to run it."""

    def __call__(self, run: Run) -> None:
        """Do the stage's work on ``run`` (reading what earlier stages left, filling its own fields)."""


@contextmanager
def calling(modality: "Modality[Any, Any]", method: str, ctx: "RunContext[Any, Any]") -> Iterator[None]:
    """Frame an exception raised inside a modality method (see :class:`ModalityFailure`).

    Errors that are already explained pass through unchanged: a :class:`FrameworkError` (a problem
    the user fixes), an interruption, a stopped training run, a failed gate, a full disk.
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


def _package_of(modality: "Modality[Any, Any]") -> str:
    """The installed distribution that ships ``modality``'s class (its top-level module otherwise)."""
    from importlib.metadata import packages_distributions

    module = type(modality).__module__.split(".")[0]
    return ", ".join(packages_distributions().get(module, [])) or module


# --- the run's own stages ------------------------------------------------------------------------


class LoadData:
    """Every run: ``modality.load_data`` once, seeded; ``ctx.classes`` from what it read."""

    name = "load"

    def applies(self, run: Run) -> bool:
        return True

    def __call__(self, run: Run) -> None:
        run.seed()
        data: DataBundle = run.call("load_data")
        run.data = data
        run.ctx.classes = list(data.classes)
        log.info("data: %s records per split, %d quarantined", data.counts(), len(data.quarantine))


class BuildTask:
    """``modality.build_task`` once, re-seeded so the initial weights depend on the seed alone;
    skipped by a run that only audits (unless an audit check needs the trained model). Under
    FSDP2 the ranks other than 0 build on the meta device when the modality can (``meta_init``):
    the engine fills their shards from rank 0's weights."""

    name = "build"

    def applies(self, run: Run) -> bool:
        return any(stage != "audit" for stage in run.stages) or run.audit_needs_model

    def __call__(self, run: Run) -> None:
        run.seed()
        on_meta = run.shards_model and not run.is_main and run.modality.meta_init
        run.task = build_task(run, meta=on_meta)


def build_task(run: Run, *, meta: bool) -> "nn.Module":
    """``modality.build_task`` on the run's data; with ``meta``, inside ``torch.device("meta")`` and
    with ``ctx.meta_device`` set (the modality must declare ``meta_init``)."""
    import torch

    data = run.require(run.data, "data")
    if not meta:
        return run.call("build_task", data)  # type: ignore[no-any-return]
    log.info("build_task on the meta device (rank %d): FSDP2 fills its shards from rank 0", run.info.rank)
    run.ctx.meta_device = True
    try:
        with torch.device("meta"):
            return run.call("build_task", data)  # type: ignore[no-any-return]
    finally:
        run.ctx.meta_device = False


class Summary:
    """Every run, last, whatever happened: ``summary.json`` (status, metrics, verdicts)."""

    name = "summary"

    def applies(self, run: Run) -> bool:
        return True

    def __call__(self, run: Run) -> None:
        result = run.result
        summary = {
            "status": result.status,
            "weights": result.weights,
            "overrides": run.overrides,
            "metrics": result.metrics,
            "fit_to_ship": result.fit_to_ship,
            "enforce_success": result.enforce_success,
            "success": [{"metric": v.criterion.metric, "required": f"{v.criterion.op}{v.criterion.threshold:g}",
                         "value": v.value, "passed": v.passed} for v in result.verdicts],
            "seconds": {name: round(t, 2) for name, t in result.seconds.items()},
        }
        if run.sets:  # evaluation.sets: where each came from; their metrics are <name>/<metric> above
            summary["sets"] = {s.name: {"source": str(s.source), "items": s.items} for s in run.sets}
        atomic_write_json(run.run_dir / SUMMARY_JSON, summary)


def status_of(exc: BaseException) -> str:
    """The ``summary.json`` status of a run that raised ``exc``."""
    from framework.data.audit import GateFailure
    from framework.training import Interrupted

    if isinstance(exc, GateFailure):
        return "refused"
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return "interrupted"
    return "failed"
