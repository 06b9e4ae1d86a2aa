"""``python -m framework``: the Hydra entry point.

    python -m framework +modality=vision                       # audit, train, evaluate, export
    python -m framework +modality=vision stages=[audit]        # the data audit alone
    python -m framework -m +modality=vision trainer.lr=1e-3,3e-3   # a sweep with a summary table
    python -m framework --plugins                              # installed plugins and modalities
    python -m framework --compare RUN_DIR_A RUN_DIR_B          # config and metric differences

Exit code 3: evaluated but not fit to ship (a ``success:`` criterion failed; for a sweep, no job met
its criteria), after writing everything; ``evaluation.enforce_success=false`` reports without failing.

Under ``torchrun`` every rank runs the same command and agrees on one run dir.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

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
    from framework.plugins import default_plugins
    from framework.sweep import objective

    hydra_cfg = HydraConfig.get()
    try:
        result = run(cfg, Path(hydra_cfg.runtime.output_dir), plugins=default_plugins(),
                     base_dir=Path(get_original_cwd()), overrides=list(hydra_cfg.overrides.task))
    except Exception as exc:  # noqa: BLE001 - classified by main(); genuine bugs keep their traceback
        if _one_line(exc) is not None:
            raise _JobStopped(exc) from exc
        raise
    if result.enforce_success and result.fit_to_ship is not None:
        _FIT.append(result.fit_to_ship)
    return objective(cfg, result.metrics)


def _one_line(exc: BaseException) -> tuple[str, int] | None:
    """``(message, exit status)`` for an error reported without a traceback, else None."""
    from framework.app import ModalityFailure
    from framework.atomic import no_space_left
    from framework.training import Interrupted, TrainingStopped

    if isinstance(exc, Interrupted):
        return str(exc), 0
    if no_space_left(exc):
        where = getattr(exc, "filename", None)
        return (f"no space left on device{f' writing {where}' if where else ''}: free some space (or point "
                "hydra.run.dir at another disk) and rerun; earlier checkpoints are intact"), 1
    if isinstance(exc, (ModalityFailure, TrainingStopped)):
        return str(exc), 1
    message = _friendly(exc)
    return (message, 2) if message is not None else None


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

    init_distributed()
    os.environ[RUN_ID_ENV] = broadcast_object(new_run_id())


def _leave_process_group() -> None:
    """Under torchrun, every rank leaves the process group together once its run is done."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from framework.training.distributed import shutdown_distributed

        shutdown_distributed()


def _hydra_main() -> None:
    import hydra

    from framework.config import conf_dir, register_configs

    register_configs()
    with _guarded_hydra_callbacks():
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_task)()


@contextlib.contextmanager
def _guarded_hydra_callbacks() -> Iterator[None]:
    """Check ``hydra.callbacks`` before Hydra builds them, and lock a single run's dir early.

    Hydra instantiates ``hydra.callbacks`` itself, before the job function runs, so the
    ``_target_`` policy (docs/security.md) is applied at that point: only Hydra ``Callback``
    classes from the core, the installed plugins, or packages in ``allowed_targets`` given on the
    command line. A single run's dir is locked there too, before Hydra writes ``.hydra/`` into it.
    """
    from hydra._internal import callbacks as hydra_callbacks
    from omegaconf import OmegaConf

    from framework.instantiate import check_hydra_callbacks, trusted_targets

    original = hydra_callbacks.Callbacks.__init__
    held = []

    def guarded(self, config=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        if config is not None:
            nodes = OmegaConf.select(config, "hydra.callbacks")
            if nodes:
                check_hydra_callbacks(nodes, trusted_targets(sys.argv[1:]))
            held.extend(_lock_single_run(config))
        original(self, config, *args, **kwargs)

    hydra_callbacks.Callbacks.__init__ = guarded  # type: ignore[method-assign]
    try:
        yield
    finally:
        hydra_callbacks.Callbacks.__init__ = original  # type: ignore[method-assign]
        for lock in held:
            lock.release()


def _lock_single_run(config) -> list:  # type: ignore[no-untyped-def]
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from framework.training.rundir import check_run_dir, lock_run_dir

    if OmegaConf.select(config, "hydra.mode") != RunMode.RUN or int(os.environ.get("RANK", "0")) != 0:
        return []
    try:
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir")))
    except Exception:  # noqa: BLE001 - e.g. ${hydra:...} before Hydra sets its runtime: app.run locks it
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
    if isinstance(exc, OverrideParseException):
        return override_parse_message(exc)
    if isinstance(exc, MissingConfigException) and missing_option_message(exc):
        return missing_option_message(exc)
    if isinstance(exc, MissingConfigException) and "modality" in str(exc):
        from framework.plugins import default_plugins

        wanted = [a.split("=", 1)[1] for a in sys.argv[1:] if a.lstrip("+").startswith("modality=")]
        installed = ", ".join(default_plugins().modalities()) or "none"
        return f"unknown modality {wanted[0] if wanted else '?'!r}. Installed modalities: {installed}."
    if isinstance(exc, (ConfigCompositionException, OmegaConfBaseException)):
        return explain(exc, sections=_modality_sections())
    return None


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
        if _FIT and not any(_FIT):
            from framework.evaluation.success import NOT_FIT_EXIT_CODE

            sys.exit(NOT_FIT_EXIT_CODE)
    except (Exception, _JobStopped) as caught:  # noqa: BLE001 - classify, then re-raise genuine bugs
        exc = caught.error if isinstance(caught, _JobStopped) else caught
        reported = _one_line(exc)
        if reported is None:
            raise
        message, status = reported
        if status == 0:  # interrupted: a checkpoint was saved; every rank stopped at the same step
            log.warning("%s", message)
            _leave_process_group()
            sys.exit(0)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(status)


if __name__ == "__main__":
    main()
