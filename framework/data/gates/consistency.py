"""Consistency gate: do annotators agree? (Cohen's / Fleiss' kappa or Krippendorff's alpha.)"""

from __future__ import annotations

import math

from framework.annotation.agreement import agreement_report, outlier_annotators
from framework.annotation.records import AnnotationRecord, by_item
from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle
from framework.wording import plural

_NAMES = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa", "krippendorff": "Krippendorff's alpha"}


def unmatched_annotations(data: DataBundle) -> list[AnnotationRecord]:
    """Annotations whose item id matches no record (nor a quarantined one); none when the bundle
    holds no records at all (annotations audited on their own)."""
    known = {r.id for r in data.records()} | {q.record_id for q in data.quarantine if q.record_id}
    if not known:
        return []
    return [a for a in data.annotations if a.item_id not in known]


def _unmatched_finding(unmatched: list[AnnotationRecord], total: int) -> Finding:
    items = sorted({a.item_id for a in unmatched})
    examples = ", ".join(f"{a.item_id!r} ({a.source})" if a.source else repr(a.item_id) for a in unmatched[:3])
    return Finding("unmatched_annotations", tuple(items),
                   f"{len(unmatched)} of {total} annotations name {len(items)} item id(s) that match no record, "
                   f"e.g. {examples}; left out of agreement: fix the item ids or add the records")


class ConsistencyGate:
    """Checks inter-annotator agreement of items with two or more annotators against ``min_kappa``.

    Reports overall agreement, agreement per class, per annotator against the majority-vote
    consensus and per pair of annotators. Below ``flag_below`` the summary warns that the model
    would learn disagreement. With three or more annotators, one whose kappa against the
    consensus is ``outlier_margin`` below the others' median is flagged by name (a warning;
    ``min_annotator_kappa`` fails the gate). Annotations whose item id matches no record are
    reported and left out. Not applicable (passes) when no item has two annotators.
    """

    name = "consistency"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Compute agreement from ``data.annotations`` and compare with ``min_kappa``."""
        s = gate_settings(self.name, ctx.settings)
        unmatched = unmatched_annotations(data)
        stray = {id(a) for a in unmatched}
        report = agreement_report(by_item(a for a in data.annotations if id(a) not in stray))
        notes = [_unmatched_finding(unmatched, len(data.annotations))] if unmatched else []
        if report.items == 0:
            summary = "not applicable: no item has 2+ annotators" + "".join(f"; {f.detail}" for f in notes)
            return CheckResult(self.name, True, summary=summary, findings=notes,
                               measured={"items": 0, "unmatched_annotations": len(unmatched)})
        outliers = outlier_annotators(report.per_annotator, float(s["outlier_margin"])) \
            if s["outlier_margin"] is not None else {}
        measured = {"method": report.method, "value": report.value, "items": report.items,
                    "annotators": report.annotators, "per_class": report.per_class,
                    "per_annotator": report.per_annotator, "pairwise": report.pairwise,
                    "outliers": sorted(outliers), "unmatched_annotations": len(unmatched)}
        stat, value, need = _NAMES[report.method], report.value, float(s["min_kappa"])
        findings = [Finding("low_class_agreement", (c,), f"class {c!r}: agreement {v:.2f} < {need:.2f}")
                    for c, v in report.per_class.items() if not math.isnan(v) and v < need]
        weak = {a: m for a, m in report.per_annotator.items()
                if not math.isnan(m["kappa"]) and m["kappa"] < float(s["min_annotator_kappa"])}
        findings += [Finding("weak_annotator", (a,), f"annotator {a}: kappa vs consensus {m['kappa']:.2f}")
                     for a, m in weak.items()]
        findings += [Finding("outlier_annotator", (a,), why) for a, why in outliers.items()] + notes
        where = f"over {plural(report.items, 'item')}, {plural(report.annotators, 'annotator')}"
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
        if outliers:
            summary += "; flagged: " + "; ".join(outliers.values())
        summary += "".join(f"; {f.detail}" for f in notes)
        return CheckResult(self.name, passed, summary=summary, measured=measured, findings=findings,
                           override=override(self.name, "min_kappa"))
