"""Coverage gate: enough examples of every slice value (language, accent, lighting...)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle

MISSING = "<missing>"


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


class CoverageGate:
    """Checks counts per slice value (``data.slices``) against ``min_per_slice``.

    Settings: ``min_per_slice`` (int, ``{field: int}`` or ``{field: {value: int}}``),
    ``expected`` (``{field: [values]}`` that must appear), ``splits`` (splits checked).
    Records without a slice field count as ``<missing>``, which is reported but not required.
    """

    name = "coverage"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Count slices per split and compare with the minimums."""
        s = gate_settings(self.name, ctx.settings)
        fields = tuple(ctx.slice_fields)
        if not fields:
            return CheckResult(self.name, True, summary="not applicable: no data.slices configured",
                               override="data.slices=[field,...]")
        measured: dict[str, Any] = {split: {f: dict(c) for f, c in slice_counts(data, fields, split).items()}
                                    for split in data.splits}
        findings = []
        for split in [sp for sp in s["splits"] if sp in data.splits]:
            for f in fields:
                counts = Counter(measured[split][f])
                for value in s["expected"].get(f, []):
                    counts.setdefault(str(value), 0)
                for value, n in sorted(counts.items()):
                    need = _minimum(s["min_per_slice"], f, value)
                    if value != MISSING and n < need:
                        findings.append(Finding("thin_slice", (f"{split}:{f}={value}",),
                                                f"{split} {f}={value}: {n} < {need} (short by {need - n})"))
        passed = not findings
        summary = (f"every slice of {', '.join(fields)} meets min_per_slice in {', '.join(s['splits'])}" if passed
                   else f"{len(findings)} slice(s) under minimum: " + "; ".join(f.detail for f in findings[:5]))
        return CheckResult(self.name, passed, summary=summary, measured={"counts": measured}, findings=findings,
                           override=override(self.name, "min_per_slice"))
