"""The quality-check interface shared by the core gates and by plugins.

A :class:`QualityCheck` reads a :class:`~framework.data.records.DataBundle` and returns a
:class:`CheckResult`. The core's six gates (coverage, consistency, accuracy, cleanliness, balance,
documentation) are checks; modalities and third-party plugins add more through the
``framework_quality_checks`` hook. The audit stage runs them all, writes every result into
``audit/audit.json`` and the data card, and refuses to train when a failed check is a gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, TypeVar, runtime_checkable

from framework.data.parallel import AuditConfig, ItemPool
from framework.data.records import DataBundle
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.modality import RunContext


@dataclass(frozen=True)
class Finding:
    """One concrete problem a check found (a duplicate pair, an outlier file...).

    Attributes:
        kind: Short category (``exact_duplicate``, ``low_resolution``, ``clipping``...).
        items: Record ids or sources involved.
        detail: Human-readable explanation.
    """

    kind: str
    items: tuple[str, ...]
    detail: str = ""


@dataclass
class CheckResult:
    """The outcome of one quality check.

    Attributes:
        name: The check's name, as used in config overrides (``data.gates.<name>``).
        passed: Whether the measured values meet the thresholds.
        gate: When ``True`` a failure stops the run before training (unless
            ``data.gates.enforce=false``); when ``False`` a failure is a warning in the report.
        summary: One line that says what was measured, against which threshold, and by how much
            it missed, e.g. ``"kappa 0.52 < 0.70 (short by 0.18)"``.
        measured: The figures behind the summary, for ``audit.json``.
        findings: The individual problems, for the report and the quarantine list.
        override: What the user can set to relax or disable this check.
    """

    name: str
    passed: bool
    gate: bool = True
    summary: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    override: str = ""


@dataclass(frozen=True)
class CheckContext:
    """What a check may read besides the data.

    Attributes:
        modality: Name of the running modality.
        settings: This check's own settings from ``data.gates.<name>`` (thresholds...), or empty.
        slice_fields: The slice fields named in ``data.slices``.
        out_dir: The audit directory, for checks that write artifacts (plots, lists).
        label_type: The modality's label type (``class``, ``text``, ``preference``, ``none``):
            whether every record needs a ``label``.
        model: The trained task, for checks that score the data with it (``needs_model``);
            ``None`` for every other check.
        pool: Maps per-item work (decoding, fingerprinting) over the audit's processes or Dask
            cluster (``audit:`` config): ``ctx.pool.map(fn, records)`` with a module-level ``fn``.
            In-process by default, outside an audit.
        run: The run's :class:`~framework.modality.RunContext`, for checks that score the data
            with the model (``needs_model``): its typed config and the modality's ``stash``, where
            ``train`` leaves what such a check reads (training dynamics, decoded-media caches).
            ``None`` for every other check, and when the audit runs outside a run.
    """

    modality: str
    settings: Mapping[str, Any]
    slice_fields: tuple[str, ...]
    out_dir: Path
    label_type: str = "class"
    model: Any = None
    run: RunContext[Any, Any] | None = None
    pool: ItemPool = field(default_factory=lambda: ItemPool(AuditConfig(workers=1)))


class SettingsError(FrameworkError, ValueError):
    """A check's settings (``data.gates.<name>`` or ``data.gates.plugins.<name>``) name a key the
    check does not read."""


T = TypeVar("T")


def media_infos(data: DataBundle, read: Callable[[str], T | None], *, cache_key: str,
                known: Mapping[str, T] | None = None, pool: ItemPool | None = None) -> dict[str, T]:
    """``read(path)`` of every record's media file, by path (``None`` results left out): the
    per-item work a plugin's checks share, done once per bundle.

    Paths in ``known`` (what the modality learned while loading) are not read again; the others
    are read on ``pool`` (``ctx.pool``: the audit's processes or Dask cluster; in process without
    one), in record order, so a chunk of work is mostly one tar shard, and kept in
    ``data.extras[cache_key]`` for the next check. ``read`` must be a module-level function of a
    path string (it is pickled to the workers).
    """
    known = known or {}
    done: dict[str, Any] = data.extras.setdefault(cache_key, {})
    paths = list(dict.fromkeys(str(r.media) for r in data.records() if r.media is not None))
    missing = [p for p in paths if p not in known and p not in done]
    if missing:
        done.update(zip(missing, (pool or ItemPool(AuditConfig(workers=1))).map(read, missing)))
    out: dict[str, T] = {}
    for path in paths:
        info = known.get(path, done.get(path))
        if info is not None:
            out[path] = info
    return out


def check_settings(where: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A check's ``defaults`` overlaid with the user's ``given`` settings.

    Args:
        where: The config path of the settings, for the message (``data.gates.plugins.my_check``).
        given: The user's settings (a dict or an OmegaConf node), or ``None``.
        defaults: Every key the check reads, with its default.

    Raises:
        SettingsError: for a key not in ``defaults``, naming the valid keys.
    """
    from omegaconf import DictConfig, OmegaConf

    values = OmegaConf.to_container(given, resolve=True) if isinstance(given, DictConfig) else dict(given or {})
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise SettingsError(f"{where} has unknown setting(s) {unknown}; valid keys: {sorted(defaults)}")
    return {**defaults, **values}


@runtime_checkable
class QualityCheck(Protocol):
    """A data check run by the audit stage.

    Implementations are small objects with a ``name`` and a ``run`` method; they must not modify
    the bundle. A check that does not apply to the data at hand (no annotations, no audio)
    returns a passing result whose summary says it was not applicable.

    A check with settings also sets ``defaults``, a mapping of every setting it reads to its
    default value. The core registers them under ``data.gates.plugins.<name>`` before the config
    is composed, so ``data.gates.plugins.<name>.KEY=...`` works without ``+``, a misspelled key is
    an error naming the valid ones before any data loads, and ``ctx.settings`` arrives merged
    with the defaults.

    A check that scores the data with the trained model (caption/image misalignment, loss-based
    label noise) sets the class attribute ``needs_model = True``. The audit before training lists
    it as pending; it runs after the train stage, or with ``stages=[audit] checkpoint=PATH`` once
    those weights are loaded, with the task in ``ctx.model`` and the run's context in ``ctx.run``,
    and its result joins the same
    ``audit.json`` and data card (:func:`framework.data.audit.run_model_checks`).
    """

    name: str

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Measure the data and return the result; called once per audit."""
        ...


def needs_model(check: QualityCheck) -> bool:
    """Whether ``check`` scores the data with the trained model (its ``needs_model`` attribute)."""
    return bool(getattr(check, "needs_model", False))


_REGISTERED_DEFAULTS: dict[str, dict[str, Any]] = {}


def register_check_defaults(name: str, defaults: Mapping[str, Any]) -> None:
    """Make ``data.gates.plugins.<name>`` a config node holding ``defaults`` (idempotent)."""
    _REGISTERED_DEFAULTS[name] = dict(defaults)


def registered_check_defaults() -> dict[str, dict[str, Any]]:
    """Every registered plugin check's defaults by check name (copies): the default of
    ``data.gates.plugins``."""
    import copy

    return copy.deepcopy(_REGISTERED_DEFAULTS)


def register_plugin_check_defaults(plugins: Any) -> None:
    """Register the ``defaults`` of every quality check the installed plugins contribute, for
    every installed modality (called before the config is composed)."""
    for modality in plugins.modalities():
        for check in plugins.quality_checks(modality):
            defaults = getattr(check, "defaults", None)
            if isinstance(defaults, Mapping) and getattr(check, "name", None):
                register_check_defaults(check.name, defaults)
