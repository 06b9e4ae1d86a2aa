"""The config a run would get, for tools that work beside a run (a preview, a notebook, a test).

:func:`compose_config` composes the core config with a user's overrides exactly as
``python -m framework OVERRIDES`` does, and :func:`modality_sections` binds a modality's config
nodes to its ``sections`` dataclasses the way the run does before calling the modality. Neither
runs a stage or creates a run directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from omegaconf import DictConfig, OmegaConf

from framework.config import conf_dir, normalise_overrides, register_configs, typed_section

if TYPE_CHECKING:
    from pathlib import Path

    from framework.modality import Modality, RunContext
    from framework.plugins import Plugins

__all__ = ["compose_config", "modality_sections", "stored_run_config", "stored_run_context"]


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """Compose the framework config as ``python -m framework OVERRIDES`` would, without running.

    ``overrides`` are written as a user types them (``+modality=text``, ``'+success.accuracy=>=0.9'``);
    every installed plugin's config folder is on the search path. Returns the composed, unresolved
    config; Hydra's own errors (an unknown group option, a malformed override) propagate.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=normalise_overrides(list(overrides)),
                             return_hydra_config=False)


def modality_sections(cfg: DictConfig, modality: Modality) -> dict[str, Any]:
    """Each of ``modality.sections`` (``{"modality": MyConfig, "model": MyModelConfig}``) read from
    the composed ``cfg`` as an instance of its dataclass: what ``ctx.modality`` and ``ctx.model``
    hold in a run. Raises :class:`~framework.errors.FrameworkError` naming the valid keys when a
    node holds a key its dataclass lacks."""
    return {name: OmegaConf.to_object(typed_section(cfg, name, schema)) for name, schema in modality.sections.items()}


def stored_run_config(run_dir: Path) -> Path:
    """The resolved config a run stored: ``.hydra/config.yaml``, else the ``config.yaml`` beside its
    export or newest checkpoint.

    Raises:
        FrameworkError: when the directory holds none of them.
    """
    from pathlib import Path

    from framework.errors import FrameworkError
    from framework.training import latest_checkpoint

    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    candidates = [run_dir / ".hydra" / "config.yaml", run_dir / "export" / "config.yaml"]
    candidates += [checkpoint / "config.yaml"] if checkpoint is not None else []
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise FrameworkError(f"{run_dir} holds no stored config (.hydra/config.yaml, export/config.yaml or a "
                             f"checkpoint's); pass the directory of a run made by python -m framework")
    return found


def stored_run_context(cfg: DictConfig, out_dir: Path, plugins: Plugins | None = None) -> tuple[Modality, RunContext]:
    """The modality and a context rebuilt from a run's stored, resolved config (the
    ``config.yaml`` beside its weights, or ``.hydra/config.yaml``), for a tool that works on a
    finished run (the monitor, the annotation merge); ``out_dir`` is the context's run dir."""
    from framework.data.config import DataConfig
    from framework.modality import RunContext
    from framework.plugins import default_plugins

    register_configs()  # resolvers a stored config may still name
    plugins = plugins or default_plugins()
    modality = plugins.modality(str(cfg.modality.name))
    sections = modality_sections(cfg, modality)
    ctx = RunContext(run_dir=out_dir, modality=sections.get("modality", cfg.modality),
                     model=sections.get("model", cfg.get("model")),
                     data=OmegaConf.to_object(typed_section(cfg, "data", DataConfig)), seed=int(cfg.get("seed", 0)),
                     plugins=plugins, config_yaml=OmegaConf.to_yaml(cfg))
    return modality, ctx
