"""Accuracy gate: each annotator's accuracy on gold items (known answers, sycophancy traps).

Gold answers are ``bundle.extras["gold"]`` (record id -> label), filled by ``load_bundle`` from
``data.gold``, records' ``gold_label`` fields and preference ``gold``/``trap`` markers.
"""

from __future__ import annotations

from framework.annotation.records import by_item
from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.gates._base import gate_settings, override
from framework.data.records import DataBundle

GOLD_KEY = "gold"


def gold_accuracy(labels: dict, gold: dict) -> dict[str, dict[str, float]]:
    """Annotator -> ``{"correct", "total", "accuracy"}`` over the gold items they labelled."""
    stats: dict[str, list[int]] = {}
    for item, answer in gold.items():
        for who, label in labels.get(item, {}).items():
            tally = stats.setdefault(who, [0, 0])
            tally[0] += int(label == answer)
            tally[1] += 1
    return {who: {"correct": c, "total": t, "accuracy": c / t} for who, (c, t) in sorted(stats.items())}


class AccuracyGate:
    """Fails when any annotator with at least ``min_gold_items`` gold answers scores below
    ``min_gold_accuracy``. Not applicable when there are no gold items with annotations."""

    name = "accuracy"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Score each annotator on the gold items."""
        s = gate_settings(self.name, ctx.settings)
        gold = data.extras.get(GOLD_KEY) or {}
        stats = gold_accuracy(by_item(data.annotations), gold)
        if not stats:
            why = "no gold items" if not gold else "no annotations on gold items"
            return CheckResult(self.name, True, summary=f"not applicable: {why}", measured={"gold_items": len(gold)})
        need = float(s["min_gold_accuracy"])
        judged = {a: m for a, m in stats.items() if m["total"] >= s["min_gold_items"]}
        failing = {a: m for a, m in judged.items() if m["accuracy"] < need}
        findings = [Finding("low_gold_accuracy", (a,), f"annotator {a}: {m['correct']}/{m['total']} = "
                            f"{m['accuracy']:.2f} < {need:.2f} (short by {need - m['accuracy']:.2f})")
                    for a, m in failing.items()]
        findings += [Finding("few_gold_items", (a,), f"annotator {a}: only {m['total']} gold answers")
                     for a, m in stats.items() if a not in judged]
        if failing:
            summary = f"{len(failing)} of {len(judged)} annotators below gold accuracy {need:.2f}: " + "; ".join(
                f.detail for f in findings[: len(failing)][:5])
        else:
            worst = min((m["accuracy"] for m in judged.values()), default=1.0)
            summary = f"all {len(judged)} annotators >= {need:.2f} on {len(gold)} gold items (lowest {worst:.2f})"
        return CheckResult(self.name, not failing, summary=summary,
                           measured={"gold_items": len(gold), "per_annotator": stats}, findings=findings,
                           override=override(self.name, "min_gold_accuracy"))
