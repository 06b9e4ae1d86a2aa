"""``python -m framework``: the Hydra entry point.

    python -m framework +modality=vision                       # audit, train, evaluate, export
    python -m framework +modality=vision stages=[audit]        # the data audit alone
    python -m framework -m +modality=vision trainer.lr=1e-3,3e-3   # a sweep with a summary table
    python -m framework --plugins                              # installed plugins and modalities
    python -m framework --compare RUN_DIR_A RUN_DIR_B          # config and metric differences

Exit codes (:class:`ExitCode`, decided in :func:`outcome` alone): 0 done (or interrupted after a
checkpoint), 1 a failure, 2 a config or command-line error, 3 evaluated but not fit to ship (a
``success:`` criterion failed; for a sweep, no job met its criteria), after writing everything;
``evaluation.enforce_success=false`` reports without failing.

Under ``torchrun`` every rank runs the same command and agrees on one run dir.
"""

from __future__ import annotations

import argparse
import enum
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger("framework")

_FIT: list[bool] = []  # per job of this process with enforced criteria: whether it is fit to ship


class _JobStopped(BaseException):
    """Carries an error the entry point reports in one line past Hydra, which would otherwise print
    "Error executing job" with a traceback (Hydra catches ``Exception`` only)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _task(cfg) -> float | None:  # type: ignore[no-untyped-def]
    """One Hydra job: run the stages; return the sweep objective (for optimising sweepers)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    from framework.app import run
    from framework.instantiate import check_hydra_config, trusted_targets
    from framework.plugins import default_plugins
    from framework.sweep import objective

    hydra_cfg = HydraConfig.get()
    try:
        check_hydra_config(hydra_cfg, trusted_targets(sys.argv[1:]))  # vetted before Hydra ran: a second look
        result = run(cfg, Path(hydra_cfg.runtime.output_dir), plugins=default_plugins(),
                     base_dir=Path(get_original_cwd()), overrides=list(hydra_cfg.overrides.task))
    except Exception as exc:  # noqa: BLE001 - classified by main(); genuine bugs keep their traceback
        if outcome(exc) is not None:
            raise _JobStopped(exc) from exc
        raise
    if result.enforce_success and result.fit_to_ship is not None:
        _FIT.append(result.fit_to_ship)
    return objective(cfg, result.metrics)


class ExitCode(enum.IntEnum):
    """The process exit codes of ``python -m framework`` (single runs and sweeps alike)."""

    OK = 0  #: done, or interrupted (SIGTERM) after a checkpoint
    FAILED = 1  #: a modality or training failed, or the disk is full
    USAGE = 2  #: a config or command-line error the user can fix
    NOT_FIT = 3  #: evaluated, but no run met its enforced success criteria


_EXIT_MEANINGS = {
    ExitCode.OK: "done (or interrupted by SIGTERM after a checkpoint; rerun the command to resume)",
    ExitCode.FAILED: "a modality or training failed, or the disk is full (the run's run.log has the traceback)",
    ExitCode.USAGE: "a config or command-line error you can fix (the one-line message says how)",
    ExitCode.NOT_FIT: "evaluated, but not fit to ship: a success criterion failed (everything is still written)",
}


@dataclass(frozen=True)
class Outcome:
    """How a run ends: its exit code and the one line reported (``None``: nothing to say)."""

    code: ExitCode
    message: str | None = None


def outcome(error: BaseException | None = None, fit: Sequence[bool] = ()) -> Outcome | None:
    """The one place exit codes are decided, for a single run and a sweep.

    Called by the job function (to classify an error) and by :func:`main` at the end. ``fit`` holds,
    for each job with enforced success criteria, whether it is fit to ship: no job fit is
    :attr:`ExitCode.NOT_FIT`. Returns ``None`` for an error that is a genuine bug (its traceback is kept).
    """
    from framework.app import ModalityFailure
    from framework.atomic import no_space_left
    from framework.training import Interrupted, TrainingStopped

    if error is None:
        return Outcome(ExitCode.NOT_FIT if fit and not any(fit) else ExitCode.OK)
    if isinstance(error, Interrupted):
        return Outcome(ExitCode.OK, str(error))
    if no_space_left(error):
        where = getattr(error, "filename", None)
        return Outcome(ExitCode.FAILED, f"no space left on device{f' writing {where}' if where else ''}: free some "
                       "space (or point hydra.run.dir at another disk) and rerun; earlier checkpoints are intact")
    if isinstance(error, (ModalityFailure, TrainingStopped)):
        return Outcome(ExitCode.FAILED, str(error))
    message = _friendly(error)
    return Outcome(ExitCode.USAGE, message) if message is not None else None


def _one_line(exc: BaseException) -> tuple[str, int] | None:
    """``(message, exit status)`` for an error reported without a traceback, else None (see :func:`outcome`)."""
    ended = outcome(exc)
    return None if ended is None else (ended.message or "", int(ended.code))


USAGE = """\
usage: python -m framework +modality=NAME [KEY=VALUE ...]      one run: audit, train, evaluate, export
       python -m framework -m +modality=NAME KEY=A,B ...       a sweep, one job per value, one summary table
       python -m framework --plugins                           installed plugins and their modalities
       python -m framework --compare RUN_DIR_A RUN_DIR_B       config and metric differences of two runs
       python -m framework --help | --hydra-help               this help | Hydra's own flags

Installed modalities (select one with +modality=NAME, the + included):
{modalities}

Common overrides:
  stages=[audit,train,evaluate,export]   the stages to run, in this order (the default); a subset such as
                                         stages=[audit] or stages=[evaluate] checkpoint=RUN_DIR/checkpoints/step_N
  model=NAME  data.root=DIR  data.train=MANIFEST  trainer.lr=1e-3  trainer.max_steps=100  seed=0
  tracking=jsonl|mlflow|tensorboard|wandb|all
  '+success.accuracy=>=0.9'              a success criterion (quoted: it holds '>')
  python -m framework +modality=NAME --cfg job    print the composed config without running

Outputs: outputs/<modality>/<run id>/ (hydra.run.dir=DIR elsewhere): report.html, report.md,
summary.json, metrics.jsonl, audit/, checkpoints/, export/ (the deployable model; stages=[export]).

After training:
  python -m framework.monitoring RUN_DIR BATCH [--fail-on-drift]         drift of a new batch (exit 4 on drift)
  python -m framework.monitoring evaluate RUN_DIR LABELLED_BATCH [--max-increase error_rate=0.05]
                                         error rates into RUN_DIR/monitor/history.jsonl (exit 5 on an alert)
  python -m framework.annotation report EXPORT    agreement, gold accuracy, adjudication of annotations
  python -m framework.annotation push TASKS --project TITLE    a review sample to a running Label Studio
  python -m framework.annotation pull --project TITLE --out FILE    its finished annotations, annotators named
  python -m framework.annotation merge RUN_DIR FILE    reviewed items into a new training manifest
                                         (python -m framework.annotation --help lists every command)
  python -m framework.data split SOURCE OUT       train/val/test manifests from one source

Exit codes of python -m framework:
{exit_codes}
"""


def usage() -> str:
    """The project's own usage text: commands, the installed modalities, overrides, exit codes."""
    from framework.plugins import load_plugins

    try:
        found = load_plugins(strict=False).modalities()
        modalities = "\n".join(f"  {name:<12} {m.description}".rstrip() for name, m in found.items()) or \
            "  none (install a plugin package; python -m framework --plugins explains failures)"
    except Exception as exc:  # noqa: BLE001 - help must print even when a plugin is broken
        modalities = f"  (could not list them: {type(exc).__name__}: {exc}; python -m framework --plugins)"
    codes = "\n".join(f"  {int(code)}  {_EXIT_MEANINGS[code]}" for code in ExitCode)
    return USAGE.format(modalities=modalities, exit_codes=codes)


def _print_help() -> None:
    print(usage())
    print("=" * 100)  # Hydra's own help (config groups) follows


def _list_plugins() -> int:
    from framework.plugins import load_plugins

    # Not strict: a plugin with a broken hook is listed as FAILED, with the fix, among the others.
    print(load_plugins(strict=False).listing())
    return 0


def _compare(args: list[str]) -> int:
    from framework.tracking import compare_runs

    if len(args) != 2:
        print("usage: python -m framework --compare RUN_DIR_A RUN_DIR_B", file=sys.stderr)
        return 2
    print(compare_runs(Path(args[0]), Path(args[1])))
    return 0


def _overrides(args: list[str]) -> list[str]:
    """The ``KEY=VALUE`` arguments of a command line."""
    return [a for a in args if "=" in a and not a.startswith("-")]


def _agree_on_run_dir() -> None:
    """Under torchrun, share rank 0's run id so that every rank writes to one run dir."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if any(a in ("-m", "--multirun") for a in sys.argv[1:]):
        raise SystemExit(
            "error: -m/--multirun cannot run under torchrun (each rank would launch its own sweep). "
            "Sweep distributed jobs with the submitit launcher instead: "
            "python -m framework -m hydra/launcher=submitit_slurm_example ... (see conf/hydra/launcher/)."
        )
    from framework.config import RUN_ID_ENV, new_run_id
    from framework.training.distributed import broadcast_object, init_distributed

    elastic = _elastic_run_id()
    init_distributed()
    os.environ[RUN_ID_ENV] = elastic or broadcast_object(new_run_id())


def _elastic_run_id() -> str | None:
    """Under ``torchrun --max-restarts=N`` (N > 0): a run id that survives a restart, so the
    restarted workers find the run dir and resume from its newest checkpoint: ``elastic-`` and the
    rendezvous id (``--rdzv-id``, the same on every node; ``--standalone`` makes one per launch).
    ``None`` without restarts, or when ``hydra.run.dir`` is given."""
    if int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) <= 0:
        return None
    if any(a.startswith(("hydra.run.dir=", "++hydra.run.dir=")) for a in sys.argv[1:]):
        return None
    rendezvous = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if rendezvous in ("", "none"):
        raise SystemExit(
            "error: torchrun --max-restarts needs a run dir every restart finds: pass --rdzv-id=JOB_ID "
            "(the same on every node, e.g. $SLURM_JOB_ID) or hydra.run.dir=/shared/path/run (docs/training.md#multi-node)"
        )
    return f"elastic-{rendezvous}"


def _leave_process_group() -> None:
    """Under torchrun, every rank leaves the process group together once its run is done."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from framework.training.distributed import shutdown_distributed

        shutdown_distributed()


def _hydra_main() -> None:
    import hydra

    from framework.config import conf_dir, register_configs

    register_configs()
    held = _vet_before_hydra(sys.argv[1:])
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_task)()
    finally:
        for lock in held:
            lock.release()


def _hydra_args(argv: list[str]) -> argparse.Namespace:
    """The command line as ``hydra.main`` reads it: its flags, and the overrides."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flags in (("-h", "--help"), ("--hydra-help",), ("--version",), ("--resolve",), ("-r", "--run"),
                  ("-m", "--multirun"), ("-sc", "--shell-completion")):
        parser.add_argument(*flags, action="store_true")
    for flags in (("-c", "--cfg"), ("-p", "--package"), ("-cp", "--config-path"), ("-cn", "--config-name"),
                  ("-cd", "--config-dir"), ("--experimental-rerun",)):
        parser.add_argument(*flags)
    parser.add_argument("-i", "--info", nargs="?", const="all")
    parser.add_argument("overrides", nargs="*")
    return parser.parse_args(argv)


#: Sweeps with more jobs than this are vetted one swept value at a time (others at their first value).
MAX_VETTED_JOBS = 64


def _vet_before_hydra(argv: list[str]) -> list:  # type: ignore[type-arg]
    """Compose the run's config (every job's, for a sweep) and vet its ``hydra`` node; lock a run dir.

    Hydra builds ``hydra.callbacks``, the launcher and the sweeper and configures logging from
    ``hydra.hydra_logging``/``hydra.job_logging`` before the job function runs, so the ``_target_``
    policy (docs/security.md) is applied here, on the config composed with Hydra's public compose
    API from the same command line, before ``hydra.main`` is called. A single run's dir is locked
    here too, before Hydra writes ``.hydra/`` into it. Returns the locks to release at the end.

    Raises:
        FrameworkError: A refused value (one line), or ``--experimental-rerun`` (it unpickles a file).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from framework.config import conf_dir
    from framework.errors import FrameworkError
    from framework.instantiate import check_remote_code, trusted_targets

    args = _hydra_args(argv)
    if args.experimental_rerun:
        raise FrameworkError("--experimental-rerun is refused: it unpickles a file, which can run code "
                             "(docs/security.md); rerun with the overrides in the run's .hydra/overrides.yaml")
    if args.version or args.shell_completion:
        return []  # nothing is composed
    primary = Path(args.config_path) if args.config_path else conf_dir()
    if not primary.is_absolute():
        raise FrameworkError(f"--config-path {args.config_path} must be an absolute path (or add a directory "
                             "with --config-dir)")
    trusted = trusted_targets(argv)
    overrides = list(args.overrides)
    if args.config_dir:
        found = OmegaConf.from_dotlist([o for o in overrides if o.startswith("hydra.searchpath=")])
        extra = list(OmegaConf.select(found, "hydra.searchpath") or [])
        overrides = [o for o in overrides if not o.startswith("hydra.searchpath=")]
        paths = [f"file://{Path(args.config_dir).resolve()}", *map(str, extra)]
        overrides.append("hydra.searchpath=[" + ",".join("'" + p.replace("'", "\\'") + "'" for p in paths) + "]")
    name = args.config_name or "config"
    parser = OverridesParser.create()
    with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
        parsed = parser.parse_overrides(overrides)
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        swept = [o for o in parsed if o.is_sweep_override()]
        base = compose(name, overrides=fixed, return_hydra_config=True)
        multirun = args.multirun or OmegaConf.select(base, "hydra.mode") == RunMode.MULTIRUN
        if multirun:
            params = OmegaConf.select(base, "hydra.sweeper.params") or {}
            swept += [o for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
                      if o.is_sweep_override()]
        jobs = _sweep_jobs(fixed, swept, GlobalHydra.instance().config_loader()) if multirun and swept else [fixed]
        for job in jobs:
            cfg = base if job is fixed else compose(name, overrides=job, return_hydra_config=True)
            _vet_hydra_node(cfg, trusted)
            check_remote_code(cfg, argv)
        if multirun or int(os.environ.get("RANK", "0")) != 0:
            return []
        return _lock_single_run(base)


def _sweep_jobs(fixed: list[str], swept: list, loader) -> list[list[str]]:  # type: ignore[no-untyped-def,type-arg]
    """The override lists of a sweep's jobs (each swept value once if there are too many jobs)."""
    import itertools

    from hydra.core.override_parser.types import ValueType

    choices: list[list[str]] = []
    for override in swept:
        key = override.input_line.split("=", 1)[0]
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            group = override.key_or_group.lstrip("+~")
            values = list(override.value().filter(loader.get_group_options(group)))
        elif override.value_type == ValueType.INTERVAL_SWEEP:
            continue  # numbers drawn by the sweeper: they cannot choose a config file
        else:
            values = list(override.sweep_string_iterator())
        choices.append([f"{key}={v}" for v in values])
    total = 1
    for values in choices:
        total *= len(values)
    if total <= MAX_VETTED_JOBS:
        return [[*fixed, *combo] for combo in itertools.product(*choices)]
    first = [values[0] for values in choices]
    return [[*fixed, *first[:i], value, *first[i + 1:]] for i, values in enumerate(choices) for value in values]


def _vet_hydra_node(cfg, trusted: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Apply the policy to a composed config's ``hydra`` node (its runtime paths filled in first)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    from framework.instantiate import check_hydra_config

    hydra = cfg.hydra
    with read_write(hydra), open_dict(hydra):
        if OmegaConf.is_missing(hydra.runtime, "output_dir"):
            hydra.runtime.output_dir = "<run dir>"  # a log file's place is judged by its name
    HydraConfig.instance().set_config(cfg)  # so that ${hydra:...} resolves as it will in the job
    check_hydra_config(hydra, trusted)


def _lock_single_run(config) -> list:  # type: ignore[no-untyped-def,type-arg]
    from omegaconf import OmegaConf

    from framework.training.rundir import check_run_dir, lock_run_dir

    try:
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir")))
    except Exception:  # noqa: BLE001 - e.g. ${hydra:...} it cannot resolve yet: app.run locks it
        return []
    check_run_dir(run_dir)
    return [lock_run_dir(run_dir)]


def _friendly(exc: BaseException) -> str | None:
    """The message for an error the user can fix, or None for a genuine bug (show traceback)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from framework.config import explain, missing_option_message, override_parse_message
    from framework.errors import FrameworkError

    if isinstance(exc, FrameworkError):
        return str(exc)
    malformed = _yaml_error(exc)
    if malformed is not None:
        return malformed
    if isinstance(exc, OverrideParseException):
        return override_parse_message(exc)
    if isinstance(exc, MissingConfigException) and missing_option_message(exc):
        return missing_option_message(exc)
    if isinstance(exc, MissingConfigException) and "modality" in str(exc):
        from framework.plugins import default_plugins

        wanted = [a.split("=", 1)[1] for a in sys.argv[1:] if a.lstrip("+").startswith("modality=")]
        installed = ", ".join(default_plugins().modalities()) or "none"
        return f"unknown modality {wanted[0] if wanted else '?'!r}. Installed modalities: {installed}."
    if isinstance(exc, ConfigCompositionException) and "Could not override 'modality'" in str(exc):
        from framework.plugins import default_plugins

        wanted = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("modality=")]
        installed = ", ".join(default_plugins().modalities()) or "none"
        return (f"select a modality with +modality={wanted[0] if wanted else 'NAME'} (the + is needed: a modality "
                f"is added to the config, not swapped in). Installed modalities: {installed}.")
    if isinstance(exc, (ConfigCompositionException, OmegaConfBaseException)):
        return explain(exc, sections=_modality_sections())
    return None


def _yaml_error(exc: BaseException) -> str | None:
    """A malformed YAML config file (anywhere in ``exc``'s chain) as one line naming file:line:column."""
    import yaml

    from framework.errors import first_line

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, yaml.YAMLError):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    mark = getattr(seen, "problem_mark", None)
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else "a config file"
    problem = getattr(seen, "problem", None) or first_line(seen)
    return f"{where}: malformed YAML ({problem}); fix the file (a YAML checker shows the line)"


def _modality_sections() -> dict[str, type]:
    """The config sections typed by the modality named on the command line, if any."""
    from framework.plugins import default_plugins

    names = [a.split("=", 1)[1] for a in sys.argv[1:] if a.lstrip("+").startswith("modality=")]
    try:
        return dict(default_plugins().modality(names[0]).sections) if names else {}
    except Exception:  # noqa: BLE001 - only a hint for an error message already being reported
        return {}


def main() -> None:
    """Console entry point (``python -m framework`` and the ``framework`` script)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    args = sys.argv[1:]
    if args[:1] == ["--help"] or args[:1] == ["-h"] or (("--help" in args or "-h" in args) and not _overrides(args)):
        _print_help()  # then Hydra's own help, below
    if args[:1] == ["--plugins"]:
        sys.exit(_list_plugins())
    if args[:1] == ["--compare"]:
        sys.exit(_compare(args[1:]))
    # Hydra re-raises instead of printing a one-line summary, so config errors can be explained here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    from framework.config import normalise_overrides

    sys.argv[1:] = normalise_overrides(sys.argv[1:])
    try:
        _agree_on_run_dir()
        _hydra_main()
        _leave_process_group()
        ended = outcome(None, _FIT)
    except (Exception, _JobStopped) as caught:  # noqa: BLE001 - classify, then re-raise genuine bugs
        ended = outcome(caught.error if isinstance(caught, _JobStopped) else caught)
        if ended is None:
            raise
        if ended.code == ExitCode.OK:  # interrupted: a checkpoint was saved; every rank stopped at the same step
            log.warning("%s", ended.message)
            _leave_process_group()
    if ended.message and ended.code != ExitCode.OK:
        print(f"error: {ended.message}", file=sys.stderr)
    if ended.code != ExitCode.OK:
        sys.exit(int(ended.code))


if __name__ == "__main__":
    main()
