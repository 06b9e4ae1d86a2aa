"""Balance gate: class counts, imbalance ratio, and whether easy examples dominate.

Easy-example dominance needs per-item losses from a reference model in
``bundle.extras["item_losses"]`` (record id -> loss); without them that part is skipped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import at_least, at_most, gate_settings, override
from framework.data.records import DataBundle

ITEM_LOSSES_KEY = "item_losses"


def class_counts(data: DataBundle, split: str) -> Counter:
    """Train-style class counts (labels as strings; unlabeled records skipped)."""
    counts = Counter(str(r.label) for r in data.records(split) if r.label is not None and str(r.label).strip())
    for name in data.classes:  # a declared class with no example must show up as 0
        counts.setdefault(name, 0)
    return counts


class BalanceGate:
    """Checks ``min_per_class`` and ``max_imbalance_ratio`` on train, and easy-example dominance.

    Not applicable (passes) when records carry no class labels (``DataBundle.classes`` empty).
    """

    name = "balance"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Measure class distribution per split and check the train split."""
        s = gate_settings(self.name, ctx.settings)
        measured: dict[str, Any] = {}
        checks: list[tuple[bool, str]] = []
        findings: list[Finding] = []
        if data.classes:
            per_split = {split: dict(class_counts(data, split)) for split in data.splits}
            train = class_counts(data, "train")
            smallest, largest = min(train.values(), default=0), max(train.values(), default=0)
            ratio = largest / smallest if smallest else float("inf")
            measured.update(class_counts=per_split, min_per_class=smallest, imbalance_ratio=ratio)
            checks.append(at_least("smallest class", smallest, s["min_per_class"], "{:.0f}"))
            checks.append(at_most("imbalance ratio (max/min)", ratio, float(s["max_imbalance_ratio"]), "{:.1f}"))
            findings += [Finding("small_class", (c,), f"class {c!r}: {n} train examples < {s['min_per_class']}")
                         for c, n in sorted(train.items()) if n < s["min_per_class"]]
        if ctx.slice_fields:  # reported, not judged: coverage judges slices
            measured["slice_counts"] = {f: dict(Counter(r.slices.get(f, "<missing>") for r in data.records("train")))
                                        for f in ctx.slice_fields}
        losses = data.extras.get(ITEM_LOSSES_KEY)
        if losses:
            values = np.asarray(list(losses.values()), dtype=float)
            easy = float((values < s["easy_loss_below"]).mean())
            measured["easy_fraction"] = easy
            checks.append(at_most(f"easy fraction (loss < {s['easy_loss_below']})", easy, s["max_easy_fraction"], "{:.2f}"))
        if not checks:
            return CheckResult(self.name, True, summary="not applicable: no class labels and no item losses",
                               measured=measured)
        passed = all(ok for ok, _ in checks)
        return CheckResult(self.name, passed, summary="; ".join(text for _, text in checks), measured=measured,
                           findings=findings,
                           override=override(self.name, "min_per_class", "max_imbalance_ratio", "max_easy_fraction"))
