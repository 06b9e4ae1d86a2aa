"""``python -m framework``: the Hydra entry point.

    python -m framework +modality=vision                       # audit, train, evaluate, export
    python -m framework +modality=vision stages=[audit]        # the data audit alone
    python -m framework -m +modality=vision trainer.lr=1e-3,3e-3   # a sweep with a summary table
    python -m framework --plugins                              # installed plugins and modalities
    python -m framework --compare RUN_DIR_A RUN_DIR_B          # config and metric differences

Under ``torchrun`` every rank runs the same command and agrees on one run dir.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("framework")

def _task(cfg) -> float | None:  # type: ignore[no-untyped-def]
    """One Hydra job: run the stages; return the sweep objective (for optimising sweepers)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    from framework.app import run
    from framework.plugins import default_plugins
    from framework.sweep import objective

    hydra_cfg = HydraConfig.get()
    result = run(cfg, Path(hydra_cfg.runtime.output_dir), plugins=default_plugins(),
                 base_dir=Path(get_original_cwd()), overrides=list(hydra_cfg.overrides.task))
    return objective(cfg, result.metrics)


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
    from framework.config import RUN_ID_ENV
    from framework.training.distributed import broadcast_object, init_distributed

    init_distributed()
    os.environ[RUN_ID_ENV] = broadcast_object(time.strftime("%Y-%m-%d_%H-%M-%S"))


def _leave_process_group() -> None:
    """Under torchrun, every rank leaves the process group together once its run is done."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from framework.training.distributed import shutdown_distributed

        shutdown_distributed()


def _hydra_main() -> None:
    import hydra

    from framework.config import conf_dir, register_configs

    register_configs()
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_task)()


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
    except Exception as exc:  # noqa: BLE001 - classify, then re-raise genuine bugs
        from framework.training import Interrupted

        if isinstance(exc, Interrupted):
            log.warning("%s", exc)
            _leave_process_group()  # every rank stopped at the same step, so all arrive here
            sys.exit(0)
        message = _friendly(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
