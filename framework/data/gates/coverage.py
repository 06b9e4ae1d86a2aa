"""Coverage gate: every configured split holds records, labelled when the modality needs labels,
and enough examples of every slice value (language, accent, lighting...)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle
from framework.wording import plural

MISSING = "<missing>"
# Label types whose records each need a label (preference pairs keep theirs in fields).
LABELLED_TYPES = frozenset({"class", "text"})


def _minimum(rule: Any, field: str, value: str) -> int:
    """Minimum for one slice value from an int, ``{field: int}`` or ``{field: {value: int}}``."""
    if isinstance(rule, dict):
        rule = rule.get(field, 0)
        if isinstance(rule, dict):
            rule = rule.get(value, rule.get("default", 0))
    return int(rule)


def slice_counts(data: DataBundle, fields: tuple[str, ...], split: str | None) -> dict[str, Counter]:
    """Counts per slice value for each field, over one split (or all when ``None``)."""
    counts = {f: Counter() for f in fields}
    for rec in data.records(split):
        for f in fields:
            counts[f][rec.slices.get(f, MISSING)] += 1
    return counts


def split_findings(data: DataBundle, s: dict[str, Any], label_type: str) -> tuple[list[Finding], dict[str, Any]]:
    """Findings for splits that are empty, or whose records lack the labels ``label_type`` needs."""
    findings, measured = [], {}
    for split, records in data.splits.items():
        n = len(records)
        unlabeled = [r for r in records if r.label is None] if label_type in LABELLED_TYPES else []
        measured[split] = {"records": n, "unlabeled": len(unlabeled)}
        if n < int(s["min_records"]):
            held = f"; {plural(len(data.quarantine), 'item')} quarantined (audit/quarantine.jsonl)" if data.quarantine else ""
            findings.append(Finding("empty_split", (split,), f"split {split!r} has {n} records (needs >= "
                                    f"{s['min_records']}){held}"))
        if unlabeled and len(unlabeled) / n > float(s["max_unlabeled_fraction"]):
            examples = ", ".join(r.source for r in unlabeled[:3])
            findings.append(Finding("missing_labels", tuple(r.id for r in unlabeled),
                                    f"split {split!r}: {len(unlabeled)} of {n} records have no label "
                                    f"(label_type {label_type!r} needs one), e.g. {examples}"))
    return findings, measured


class CoverageGate:
    """Checks that every split holds records (``min_records``) with the labels the modality needs
    (``max_unlabeled_fraction``), and counts per slice value (``data.slices``) against
    ``min_per_slice``.

    Settings: ``min_records``, ``max_unlabeled_fraction``, ``min_per_slice`` (int,
    ``{field: int}`` or ``{field: {value: int}}``), ``expected`` (``{field: [values]}`` that must
    appear), ``splits`` (splits whose slices are checked). Records without a slice field count as
    ``<missing>``, which is reported but not required. Labels are needed when the modality's
    ``label_type`` is ``class`` or ``text``.
    """

    name = "coverage"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Count records, labels and slices per split and compare with the minimums."""
        s = gate_settings(self.name, ctx.settings)
        findings, per_split = split_findings(data, s, ctx.label_type)
        fields = tuple(ctx.slice_fields)
        measured: dict[str, Any] = {"splits": per_split}
        if fields:
            measured["counts"] = {split: {f: dict(c) for f, c in slice_counts(data, fields, split).items()}
                                  for split in data.splits}
            findings += self._slice_findings(measured["counts"], fields, s)
        relax = sorted({"min_records" if f.kind == "empty_split" else "max_unlabeled_fraction"
                        if f.kind == "missing_labels" else "min_per_slice" for f in findings})
        if findings:
            summary = f"{len(findings)} problem(s): " + "; ".join(f.detail for f in findings[:5])
        else:
            counts = ", ".join(f"{sp} {m['records']}" for sp, m in per_split.items())
            summary = f"records per split: {counts}" + (
                f"; every slice of {', '.join(fields)} meets min_per_slice in {', '.join(s['splits'])}" if fields
                else "; slices: not applicable (no data.slices configured)")
        return CheckResult(self.name, not findings, summary=summary, measured=measured, findings=findings,
                           override=override(self.name, *relax))

    @staticmethod
    def _slice_findings(counts_by_split: dict[str, Any], fields: tuple[str, ...], s: dict[str, Any]) -> list[Finding]:
        findings = []
        for split in [sp for sp in s["splits"] if sp in counts_by_split]:
            for f in fields:
                counts = Counter(counts_by_split[split][f])
                for value in s["expected"].get(f, []):
                    counts.setdefault(str(value), 0)
                for value, n in sorted(counts.items()):
                    need = _minimum(s["min_per_slice"], f, value)
                    if value != MISSING and n < need:
                        findings.append(Finding("thin_slice", (f"{split}:{f}={value}",),
                                                f"{split} {f}={value}: {n} < {need} (short by {need - n})"))
        return findings
