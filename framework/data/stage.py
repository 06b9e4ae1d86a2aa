"""The audit stages of a run: the data gates before training, and the checks that need the model after it."""

from __future__ import annotations

import logging

from framework.stage import Run

log = logging.getLogger(__name__)


class Audit:
    """``stages=[audit, ...]``: every gate and plugin check on the loaded data, written to
    ``audit/``; a failed gate stops the run here (``GateFailure``) unless
    ``data.gates.enforce=false``. Checks that need the trained model stay pending for :class:`ModelAudit`."""

    name = "audit"

    def applies(self, run: Run) -> bool:
        return run.selected("audit")

    def __call__(self, run: Run) -> None:
        from framework.data.audit import enforce, run_audit
        from framework.data.parallel import ItemPool

        data = run.require(run.data, "data")
        checks = run.plugins.quality_checks(run.modality.name)
        pool = ItemPool(run.config.audit)
        log.info("audit: per-item work on %s", pool.describe())
        run.audit = run_audit(data, run.ctx.data, modality=run.modality.name, extra_checks=checks,
                              out_dir=run.run_dir / "audit", label_type=data.label_type_for(run.modality.label_type),
                              pool=pool)
        enforce(run.audit, enforce=run.config.data.gates.enforce)


class ModelAudit:
    """After training (or loading ``checkpoint=``), on the main process: the pending checks score
    the data with the task, ``audit.json`` and the data card are rewritten, and the gates are
    enforced again before anything is evaluated."""

    name = "audit (model checks)"

    def applies(self, run: Run) -> bool:
        return run.audit_needs_model and run.is_main

    def __call__(self, run: Run) -> None:
        from framework.data.audit import enforce, run_model_checks

        audit = run.require(run.audit, "audit")
        names = [c.name for c in audit.pending]
        run_model_checks(audit, run.require(run.data, "data"), run.ctx.data, modality=run.modality.name,
                         model=run.require(run.task, "task"), out_dir=run.run_dir / "audit", run=run.ctx)
        for name in names:
            log.info("audit %s: %s", name, audit.result(name).summary)
        enforce(audit, enforce=run.config.data.gates.enforce)


def audit_line(run: Run) -> str | None:
    """One line for the report: how many checks ran and which failed; ``None`` without an audit."""
    if run.audit is None:
        return None
    failed = [r.name for r in run.audit.results if not r.passed]
    return f"{len(run.audit.results)} checks, " + (f"failed: {', '.join(failed)}" if failed else "all passed") + \
        " (see audit/datacard.md)"
