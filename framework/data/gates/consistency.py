"""Consistency gate: do annotators agree? (Cohen's / Fleiss' kappa or Krippendorff's alpha.)"""

from __future__ import annotations

import math

from framework.annotation.agreement import agreement_report
from framework.annotation.records import by_item
from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle

_NAMES = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa", "krippendorff": "Krippendorff's alpha"}


class ConsistencyGate:
    """Checks inter-annotator agreement of items with two or more annotators against ``min_kappa``.

    Reports overall agreement, agreement per class and per annotator against the majority-vote
    consensus. Below ``flag_below`` the summary warns that the model would learn disagreement.
    Not applicable (passes) when no item has two annotators.
    """

    name = "consistency"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Compute agreement from ``data.annotations`` and compare with ``min_kappa``."""
        s = gate_settings(self.name, ctx.settings)
        report = agreement_report(by_item(data.annotations))
        if report.items == 0:
            return CheckResult(self.name, True, summary="not applicable: no item has 2+ annotators",
                               measured={"items": 0})
        measured = {"method": report.method, "value": report.value, "items": report.items,
                    "annotators": report.annotators, "per_class": report.per_class,
                    "per_annotator": report.per_annotator}
        stat, value, need = _NAMES[report.method], report.value, float(s["min_kappa"])
        findings = [Finding("low_class_agreement", (c,), f"class {c!r}: agreement {v:.2f} < {need:.2f}")
                    for c, v in report.per_class.items() if not math.isnan(v) and v < need]
        weak = {a: m for a, m in report.per_annotator.items()
                if not math.isnan(m["kappa"]) and m["kappa"] < float(s["min_annotator_kappa"])}
        findings += [Finding("weak_annotator", (a,), f"annotator {a}: kappa vs consensus {m['kappa']:.2f}")
                     for a, m in weak.items()]
        where = f"over {report.items} items, {report.annotators} annotators"
        if math.isnan(value):
            passed, summary = False, f"{stat} undefined {where}; check the labels"
        elif value >= need:
            passed, summary = True, f"{stat} {value:.2f} >= {need:.2f} {where}"
        else:
            passed = False
            summary = f"{stat} {value:.2f} < {need:.2f} (short by {need - value:.2f}) {where}"
            if value < float(s["flag_below"]):
                summary += f"; below {float(s['flag_below']):.2f} the model would learn disagreement: clarify the guidelines and re-annotate"
        if weak:
            passed = False
            summary += f"; {len(weak)} annotator(s) under min_annotator_kappa"
        return CheckResult(self.name, passed, summary=summary, measured=measured, findings=findings,
                           override=override(self.name, "min_kappa"))
