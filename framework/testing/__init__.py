"""A contract test kit for plugin authors (and the framework's own tests).

In your plugin's test suite::

    import my_plugin.plugin
    from framework.testing import assert_plugin_contract, run_framework

    def test_contract():
        assert_plugin_contract(my_plugin.plugin)

    def test_smoke(tmp_path):
        result = run_framework(["+modality=mine", "trainer.max_steps=3"], tmp_path)
        assert result.status == "completed"

:func:`assert_plugin_contract` checks what can be checked without training: hook names and
signatures, the modalities' attributes, the config folder, that ``+modality=NAME`` composes with
the core config and validates against the modality's schemas, and the quality checks and metrics
a plugin contributes. :func:`run_framework` runs the real entry point's stages in-process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from omegaconf import DictConfig

from framework.app import RunResult, prepare, run
from framework.compose import compose_config
from framework.config import typed_section
from framework.data.audit import AuditReport, GateFailure
from framework.data.checks import QualityCheck
from framework.evaluation.types import Metric
from framework.modality import Modality
from framework.plugins import Plugins, load_plugins, new_manager

if TYPE_CHECKING:
    from framework.modality import RunContext

__all__ = ["FrameworkRun", "assert_plugin_contract", "compose", "contract_problems", "prepared", "run_context",
           "run_framework"]


def compose(overrides: Sequence[str], *, run_dir: Path | None = None) -> DictConfig:
    """Compose the framework config as ``python -m framework OVERRIDES`` would, without running
    (:func:`framework.compose_config`, kept here for the test kit's users; ``run_dir`` is unused)."""
    return compose_config(overrides)


@dataclass
class FrameworkRun(RunResult):
    """What :func:`run_framework` returns: the run's :class:`~framework.app.RunResult` plus, for a
    run the data gates refused (``status == "refused"``), the audit report and the message the
    command line would print.

    Attributes:
        run_dir: Where the run wrote its files.
        audit: The audit report of a refused run (its ``failed_gates()`` say why), else ``None``.
        message: The refusal message, else ``""``.
    """

    run_dir: Path = Path(".")
    audit: AuditReport | None = None
    message: str = ""


def run_framework(overrides: Sequence[str], run_dir: Path, *, plugins: Plugins | None = None) -> FrameworkRun:
    """Compose the config from ``overrides`` and run its stages in ``run_dir``, in this process.

    Returns the result as the command line ends the run: ``status`` is ``"completed"``, or
    ``"refused"`` when a data gate stopped it (``audit`` and ``message`` then say why). Other
    errors (a config typo, malformed data) raise, as they do on the command line.
    """
    cfg = compose(overrides)
    run_dir = Path(run_dir)
    try:
        result = run(cfg, run_dir, plugins=plugins, base_dir=run_dir, overrides=list(overrides))
    except GateFailure as refused:
        return FrameworkRun(status="refused", run_dir=run_dir, audit=refused.report, message=str(refused))
    return FrameworkRun(status=result.status, metrics=result.metrics, verdicts=result.verdicts,
                        enforce_success=result.enforce_success, weights=result.weights, run_dir=run_dir)


def prepared(overrides: Sequence[str], run_dir: Path, *, plugins: Plugins | None = None) -> tuple[Modality, "RunContext"]:
    """The modality and the :class:`~framework.modality.RunContext` that ``python -m framework
    OVERRIDES`` would hand its methods, with the config checks of a run, and no stage run.

    For benchmarks and tests that drive a modality's methods (``load_data``, ``build_task``...)
    on exactly the config a user's run composes. ``run_dir`` is created.
    """
    cfg = compose(overrides)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    job = prepare(cfg, run_dir, plugins or load_plugins(), list(overrides))
    return job.modality, job.ctx


def contract_problems(plugin: object) -> list[str]:
    """Everything about ``plugin`` (a module or object with hook implementations) that breaks the
    contract; an empty list means it honours it."""
    problems: list[str] = []
    pm = new_manager()
    try:
        pm.register(plugin, name="plugin_under_test")
        pm.check_pending()
    except Exception as exc:  # noqa: BLE001 - reported as a contract problem
        return [f"hooks do not match framework/hookspecs.py: {exc}"]
    plugins = Plugins.from_manager(pm)
    returned = [m for ms in pm.hook.framework_modalities() for m in ms or []]
    wrong = [m for m in returned if not isinstance(m, Modality)]
    if wrong:
        return [f"framework_modalities must return framework.Modality instances, got {wrong!r}"]
    try:
        modalities = plugins.modalities()
    except Exception as exc:  # noqa: BLE001
        return [f"framework_modalities raised {type(exc).__name__}: {exc}"]
    for name, modality in modalities.items():
        problems += _modality_problems(name, modality)
        problems += _contribution_problems(plugins, name)
    if modalities:
        problems += _config_problems(plugins, modalities)
    return problems


def assert_plugin_contract(plugin: object) -> None:
    """Raise ``AssertionError`` listing every contract problem of ``plugin``."""
    problems = contract_problems(plugin)
    assert not problems, "plugin breaks the framework contract:\n- " + "\n- ".join(problems)


def _modality_problems(name: str, modality: Modality) -> list[str]:
    problems = []
    if not name or not name.replace("_", "").isalnum():
        problems.append(f"modality name {name!r} must be a non-empty identifier (used as +modality={name})")
    if modality.label_type not in ("class", "text", "preference", "none"):
        problems.append(f"{name}: label_type {modality.label_type!r} is not one of class, text, preference, none")
    for section, schema in modality.sections.items():
        if not dataclasses.is_dataclass(schema):
            problems.append(f"{name}: sections[{section!r}] must be a dataclass, got {schema!r}")
    if not modality.description:
        problems.append(f"{name}: set a one-line description (shown by python -m framework --plugins)")
    return problems


def _contribution_problems(plugins: Plugins, name: str) -> list[str]:
    problems = []
    for check in plugins.quality_checks(name):
        if not isinstance(check, QualityCheck):
            problems.append(f"{name}: quality check {check!r} lacks a name or a run(data, ctx) method")
    for metric in plugins.metrics(name):
        if not isinstance(metric, Metric):
            problems.append(f"{name}: metric {metric!r} lacks a name or a compute(predictions) method")
    return problems


def _config_problems(plugins: Plugins, modalities: dict[str, Modality]) -> list[str]:
    problems: list[str] = []
    if not plugins.config_search_path():
        return ["framework_config_search_path returns nothing: ship conf/modality/<name>.yaml in your package"]
    # Compose through the installed plugins, as the CLI does, so the search path plugin is exercised.
    installed = load_plugins()
    for name, modality in modalities.items():
        if name not in installed.modalities():
            problems.append(f"{name}: not found through the framework.plugins entry points; is the package installed?")
            continue
        try:
            cfg = compose([f"+modality={name}"])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: +modality={name} does not compose: {exc}")
            continue
        if cfg.get("modality") is None or cfg.modality.get("name") != name:
            problems.append(f"{name}: modality/{name}.yaml must set modality.name: {name}")
        for section, schema in modality.sections.items():
            try:
                typed_section(cfg, section, schema)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{name}: config section {section!r} does not match {schema.__name__}: {exc}")
    return problems


def run_context(modality_yaml: Path, schemas: Mapping[str, type], run_dir: Path, *,
                overrides: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, seed: int = 0,
                config_yaml: str = "seed: 0\n") -> "RunContext":
    """A :class:`~framework.modality.RunContext` for calling a modality's methods in a unit test.

    Each section (``data`` always, plus every key of ``schemas``, e.g. ``{"modality":
    MyConfig, "model": MyModelConfig}``) is its schema, then that section of the shipped
    ``modality_yaml`` when the file has one, then each mapping of ``overrides[section]`` in order;
    the result is the typed object. Starting from the shipped YAML also checks that it binds to the
    schemas. ``run_dir`` is created; ``plugins`` is ``None``.
    """
    from omegaconf import OmegaConf

    from framework.data.config import DataConfig
    from framework.modality import RunContext

    shipped = OmegaConf.load(modality_yaml)
    nodes: dict[str, Any] = {}
    for name, schema in {"data": DataConfig, **schemas}.items():
        layers = [OmegaConf.structured(schema)]
        if name in shipped:
            layers.append(shipped[name])
        layers.extend(OmegaConf.create(dict(layer)) for layer in (overrides or {}).get(name, ()))
        nodes[name] = OmegaConf.to_object(OmegaConf.merge(*layers))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(run_dir=run_dir, seed=seed, plugins=None, config_yaml=config_yaml,  # type: ignore[arg-type]
                      modality=nodes.get("modality"), model=nodes.get("model"), data=nodes["data"])
