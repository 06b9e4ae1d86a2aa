"""Label-issue check (a warning, not a gate): confident learning on out-of-sample probabilities.

Reads ``bundle.extras["pred_probs"]``: either an ``(N, K)`` array aligned with
``bundle.records("train")``, or a mapping record id -> probability vector; columns follow
``bundle.classes``. Produce it with cross-validated predictions, never from a model that trained
on the same items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framework.annotation.label_issues import find_label_issues
from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import at_most, gate_settings, override
from framework.data.records import DataBundle, Record

PRED_PROBS_KEY = "pred_probs"


def _aligned(data: DataBundle, probs: Any) -> tuple[list[Record], np.ndarray]:
    if isinstance(probs, dict):
        records = [r for r in data.records() if r.id in probs]
        return records, np.asarray([probs[r.id] for r in records], dtype=float)
    records = data.records("train")
    probs = np.asarray(probs, dtype=float)
    if probs.shape[0] != len(records):
        raise ValueError(f"extras['pred_probs'] has {probs.shape[0]} rows but train has {len(records)} records")
    return records, probs


class LabelIssuesCheck:
    """Flags likely mislabelled items; fails (as a warning) above ``max_issue_fraction``."""

    name = "label_issues"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Run confident learning when predicted probabilities are available."""
        s = gate_settings(self.name, ctx.settings)
        probs = data.extras.get(PRED_PROBS_KEY)
        if probs is None or not data.classes:
            return CheckResult(self.name, True, gate=False,
                               summary=f"not applicable: no extras['{PRED_PROBS_KEY}'] or no classes")
        records, matrix = _aligned(data, probs)
        index = {c: j for j, c in enumerate(data.classes)}
        keep = [n for n, r in enumerate(records) if str(r.label) in index]
        labels = np.array([index[str(records[n].label)] for n in keep], dtype=int)
        issues = find_label_issues(labels, matrix[keep])
        findings = [Finding("label_issue", (records[keep[i]].id,),
                            f"labelled {data.classes[labels[i]]!r}, model confident in {data.classes[sug]!r} "
                            f"(self-confidence {score:.2f})")
                    for i, score, sug in zip(issues.indices, issues.scores, issues.suggested)]
        fraction = len(findings) / max(len(keep), 1)
        passed, text = at_most("label-issue fraction", fraction, float(s["max_issue_fraction"]), "{:.3f}")
        return CheckResult(self.name, passed, gate=False,
                           summary=f"{len(findings)} likely label issues in {len(keep)} items; {text}",
                           measured={"issues": len(findings), "items": len(keep), "fraction": fraction,
                                     "confident_joint": issues.confident_joint.tolist()},
                           findings=findings, override=override(self.name, "max_issue_fraction"))
