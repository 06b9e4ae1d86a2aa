"""The audit stage: run every gate and plugin check, write the artifacts, decide.

::

    report = run_audit(bundle, cfg, modality="vision", extra_checks=plugin_checks, out_dir=run_dir / "audit")
    enforce(report, cfg.gates.enforce)   # raises GateFailure listing each failed gate

Artifacts in ``out_dir``: ``audit.json`` (every CheckResult, counts, timestamp),
``datacard.md`` and ``quarantine.jsonl`` (every quarantined item).
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from framework.data.checks import CheckContext, CheckResult, QualityCheck, SettingsError, check_settings, needs_model
from framework.data.config import DataConfig
from framework.data.audit_card import render_datacard, write_audit_json, write_quarantine
from framework.data.gates import CORE_GATES, core_checks
from framework.data.parallel import ItemPool
from framework.data.gates._base import gate_settings, plain
from framework.data.records import DataBundle
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.modality import RunContext

CORE_CHECKS = (*CORE_GATES, "label_issues")
DATASET_CARD_KEY = "dataset_card"  # DataBundle.extras: the data's own card, read by load_bundle


@dataclass
class AuditReport:
    """What the audit found.

    Attributes:
        passed: True when every gate (``gate=True`` result) passed; warnings do not count.
        results: Every check's result, core gates first, then plugin checks.
        counts: Records per split, plus ``quarantined``.
        timestamp: When the audit ran (UTC, ISO 8601).
        artifacts: Files written (``audit.json``, ``datacard.md``, ``quarantine.jsonl``).
        pending: Checks that need the trained model (``needs_model``), listed as pending until
            :func:`run_model_checks` runs them.
    """

    passed: bool
    results: list[CheckResult]
    counts: dict[str, int] = field(default_factory=dict)
    timestamp: str = ""
    artifacts: list[Path] = field(default_factory=list)
    pending: list[QualityCheck] = field(default_factory=list)

    def failed_gates(self) -> list[CheckResult]:
        """Gates that failed; these stop training when gates are enforced."""
        return [r for r in self.results if r.gate and not r.passed]

    def warnings(self) -> list[CheckResult]:
        """Failed checks that are not gates (reported, never blocking)."""
        return [r for r in self.results if not r.gate and not r.passed]

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``.

        Raises:
            KeyError: naming the checks that ran.
        """
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; ran: {[r.name for r in self.results]}")


class GateFailure(FrameworkError):
    """Training refused because data gates failed; the message lists each gate and its override."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report
        lines = [f"{len(report.failed_gates())} data gate(s) failed; training will not start:"]
        for r in report.failed_gates():
            lines.append(f"  - {r.name}: {r.summary}")
            lines.append(f"      override: {r.override or 'data.gates.enforce=false'}")
        lines.append("See audit/datacard.md for details, or set data.gates.enforce=false to train anyway.")
        super().__init__("\n".join(lines))


def enforce(report: AuditReport, enforce: bool = True) -> None:
    """Raise :class:`GateFailure` when a gate failed and gates are enforced; otherwise return."""
    if enforce and report.failed_gates():
        raise GateFailure(report)


def _settings(cfg: DataConfig, check: QualityCheck) -> dict[str, Any]:
    if check.name in CORE_CHECKS:
        return gate_settings(check.name, getattr(cfg.gates, check.name))
    given = dict(plain(cfg.gates.plugins.get(check.name)) or {})
    defaults = getattr(check, "defaults", None)
    if isinstance(defaults, Mapping):
        return check_settings(f"data.gates.plugins.{check.name}", given, defaults)
    return given


def _run_one(check: QualityCheck, data: DataBundle, ctx: CheckContext, core: bool) -> CheckResult:
    """Run a check; an exception becomes a failed result that names the check, except a settings
    typo, which is the user's to fix and stops the run like a core gate's."""
    try:
        result = check.run(data, ctx)
    except SettingsError:
        raise
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(
            name=check.name, passed=False, gate=core and check.name in CORE_GATES,
            summary=f"check {check.name!r} raised {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})",
            override=f"fix the check, or remove the plugin providing {check.name!r}",
        )
    if not isinstance(result, CheckResult):
        return CheckResult(check.name, False, gate=False, summary=f"check {check.name!r} returned {type(result).__name__}, not CheckResult")
    return result


def run_audit(
    data: DataBundle,
    cfg: DataConfig,
    *,
    modality: str,
    extra_checks: Sequence[QualityCheck] = (),
    out_dir: Path,
    label_type: str | None = None,
    pool: ItemPool | None = None,
) -> AuditReport:
    """Run the core gates and ``extra_checks`` on ``data`` and write the audit artifacts.

    Args:
        data: The loaded bundle (not modified).
        cfg: The ``data:`` config; gate thresholds from ``cfg.gates``, plugin settings from
            ``cfg.gates.plugins[check.name]``.
        modality: The running modality's name (passed to checks, written to the card).
        extra_checks: Checks from the ``framework_quality_checks`` hook.
        out_dir: The audit directory (e.g. ``<run dir>/audit``); created if needed.
        label_type: The modality's label type (the app passes ``Modality.label_type``): whether
            records need labels (coverage: ``class`` and ``text`` do), and the review queue's
            Label Studio control. ``None``, for scripts, requires no labels and writes class
            choices.
        pool: Where per-item work runs (the ``audit:`` config); default every core of this machine.

    Returns:
        The report; call :func:`enforce` to stop on failed gates.

    Raises:
        ValueError: for an unknown key under ``data.gates.<gate>`` (before anything runs).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    documented = documentation(data, cfg)
    checks = [(c, True) for c in core_checks(documented)] + [(c, False) for c in extra_checks]
    settings = {id(c): _settings(cfg, c) for c, _ in checks}  # validates every gate's keys first
    slices = tuple(plain(cfg.slices) or ())
    pool = pool or ItemPool()
    results = [_pending(c) if needs_model(c)
               else _run_one(c, data, CheckContext(modality, settings[id(c)], slices, out_dir, label_type or "none",
                                                   pool=pool), core)
               for c, core in checks]
    # The documentation gate runs last among the core checks; plugin results go after it.
    report = AuditReport(
        passed=not any(r.gate and not r.passed for r in results),
        results=results,
        counts={**data.counts(), "quarantined": len(data.quarantine)},
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        pending=[c for c, _ in checks if needs_model(c)],
    )
    report.artifacts = _write(report, data, cfg, modality, out_dir, documented)
    review = write_review_queue(data, out_dir / "review_tasks.json", label_type=label_type or "class")
    if review is not None:
        report.artifacts.append(review)
    return report


def documentation(data: DataBundle, cfg: DataConfig) -> dict[str, Any]:
    """Sources and guidelines version from the data's own card (``datacard.yaml`` / ``DATASET.md``
    in the data root) and from ``data.sources`` / ``data.guidelines_version``."""
    from framework.data.dataset_card import read_dataset_card

    card = data.extras.get(DATASET_CARD_KEY) if DATASET_CARD_KEY in data.extras else read_dataset_card(data.root)
    sources = list(card.sources if card else ()) + [s for s in plain(cfg.sources) or [] if s]
    return {"guidelines_version": cfg.guidelines_version or (card.guidelines_version if card else ""),
            "sources": sources, "root": str(data.root), "card": str(card.path) if card else None,
            "license": card.license if card else "", "description": card.description if card else ""}


def _pending(check: QualityCheck) -> CheckResult:
    return CheckResult(check.name, passed=True, gate=False, measured={"pending": True},
                       summary="pending: scores the data with the trained model; runs after the train stage, "
                               "or with stages=[audit] checkpoint=PATH")


def run_model_checks(report: AuditReport, data: DataBundle, cfg: DataConfig, *, modality: str, model: Any,
                     out_dir: Path, run: RunContext[Any, Any] | None = None) -> AuditReport:
    """Run the report's pending checks (``needs_model``) with the trained ``model`` and rewrite
    ``audit.json`` and ``datacard.md`` with their results in place of the pending lines. ``run``,
    the run's context, reaches the checks as ``CheckContext.run`` (the modality's stash).

    Called by the audit stage after training, or after loading ``checkpoint=PATH``. Returns
    ``report``, updated; call :func:`enforce` on it as before training.
    """
    out_dir = Path(out_dir)
    slices = tuple(plain(cfg.slices) or ())
    for check in report.pending:
        ctx = CheckContext(modality, _settings(cfg, check), slices, out_dir, model=model, run=run)
        result = _run_one(check, data, ctx, core=False)
        report.results = [result if r.name == check.name else r for r in report.results]
    report.pending = []
    report.passed = not any(r.gate and not r.passed for r in report.results)
    written = _write(report, data, cfg, modality, out_dir, documentation(data, cfg))
    report.artifacts = list(dict.fromkeys([*report.artifacts, *written]))
    return report


def write_review_queue(data: DataBundle, path: Path, *, label_type: str) -> Path | None:
    """Export the annotated items worth another look (disagreement, tie, low confidence, failed
    gold) as a Label Studio import file; ``None`` when there are none."""
    from framework.annotation.review_tasks import export_review_tasks, items_needing_review

    if not data.annotations:
        return None
    reasons = items_needing_review(data.annotations, gold=data.extras.get("gold"))
    if not reasons:
        return None
    return export_review_tasks(data.records(), data.annotations, reasons, path, label_type=label_type, root=data.root)


def _write(report: AuditReport, data: DataBundle, cfg: DataConfig, modality: str, out_dir: Path,
           documented: dict[str, Any]) -> list[Path]:
    from framework.data.sources import describe

    manifests = {s: describe(getattr(cfg, s)) for s in ("train", "val", "test")}
    payload = {
        "timestamp": report.timestamp, "modality": modality, "passed": report.passed,
        "enforce": bool(cfg.gates.enforce), "counts": report.counts, "classes": data.classes,
        "root": str(data.root), "manifests": manifests, "guidelines_version": documented["guidelines_version"],
        "sources": documented["sources"], "dataset_card": documented["card"],
        "annotations": len(data.annotations), "failed_gates": [r.name for r in report.failed_gates()],
        "results": [asdict(r) for r in report.results],
    }
    card = render_datacard(data, report.results, modality=modality, passed=report.passed, timestamp=report.timestamp,
                           sources=documented["sources"], manifests=manifests,
                           guidelines_version=documented["guidelines_version"], documented=documented)
    from framework.atomic import atomic_write_text

    atomic_write_text(out_dir / "datacard.md", card)
    return [write_audit_json(payload, out_dir / "audit.json"), out_dir / "datacard.md",
            write_quarantine(data.quarantine, out_dir / "quarantine.jsonl")]
