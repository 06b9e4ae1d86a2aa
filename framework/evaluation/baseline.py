"""A run's evaluation against a launch baseline: overall and per class, changes beyond noise marked.

Reads both runs' ``eval/reports.json``. A change is *beyond noise* when it exceeds ``z`` standard
errors of a difference of two proportions, ``sqrt(p1(1-p1)/n1 + p2(1-p2)/n2)``, with ``n`` the
split's item count for overall metrics and the class's support for per-class recall (``z = 2``:
about 95% two-sided). Accuracy and per-class recall are proportions over those counts; averages
(macro F1...) are treated as one, an approximation. Metrics outside ``[0, 1]``, without a count,
and per-class F1 are shown without a mark.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

from framework.evaluation.report import load_reports_json
from framework.evaluation.direction import lower_is_better

Z = 2.0
PER_CLASS_METRICS = ("recall", "f1")  # recall is marked (a proportion of the support), F1 shown


def noise(p1: float, n1: float, p2: float, n2: float) -> float | None:
    """The standard error of ``p2 - p1`` for proportions over ``n1`` and ``n2`` items, or ``None``."""
    if not (0.0 <= p1 <= 1.0 and 0.0 <= p2 <= 1.0) or n1 <= 0 or n2 <= 0:
        return None
    return math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)


def mark(name: str, base: float, new: float, n_base: float | None, n_new: float | None, z: float = Z) -> str:
    """``better``/``worse`` when the change is beyond noise, ``within noise``, or ``""`` (unknown)."""
    if n_base is None or n_new is None or math.isnan(base) or math.isnan(new):
        return ""
    se = noise(base, n_base, new, n_new)
    if se is None:
        return ""
    delta = new - base
    if abs(delta) <= z * se or delta == 0:
        return "within noise"
    return "worse" if (delta > 0) == lower_is_better(name) else "better"


def _row(name: str, base: float, new: float, n_base: float | None, n_new: float | None, z: float) -> str:
    verdict = mark(name, base, new, n_base, n_new, z)
    shown = f"**{verdict}**" if verdict in ("better", "worse") else verdict
    return f"| {name} | {base:.4f} | {new:.4f} | {new - base:+.4f} | {shown} |"


def compare_evaluations(baseline: Path, run: Path, z: float = Z) -> list[str]:
    """Markdown lines comparing ``run``'s evaluation with ``baseline``'s, split by split.

    Returns an explanation instead when either run has no ``eval/reports.json``.
    """
    base, new = load_reports_json(baseline), load_reports_json(run)
    if not base or not new:
        missing = [str(p) for p, r in ((baseline, base), (run, new)) if not r]
        return [f"No evaluation to compare: {', '.join(missing)} has no eval/reports.json (run the evaluate stage)."]
    lines = [f"Changes beyond noise (more than {z:g} standard errors of a difference of proportions) are marked "
             "**better** or **worse**.", ""]
    for split in [s for s in new if s in base]:
        b, r = base[split], new[split]
        n_b, n_r = b.metrics.get("count"), r.metrics.get("count")
        lines += [f"### Split `{split}`", "", "| metric | baseline | run | change | beyond noise? |",
                  "|---|---|---|---|---|"]
        lines += [_row(m, b.metrics[m], r.metrics[m], n_b, n_r, z) for m in r.metrics
                  if m in b.metrics and "/" not in m and m != "count"]
        lines += [""] + _per_class(b.per_class, r.per_class, z)
    return lines


def _per_class(base: Mapping[str, Mapping[str, float]], new: Mapping[str, Mapping[str, float]], z: float) -> list[str]:
    classes = [c for c in new if c in base]
    if not classes:
        return []
    lines = ["Per class:", "", "| class | metric | baseline | run | change | beyond noise? |", "|---|---|---|---|---|---|"]
    for name in classes:
        b, r = base[name], new[name]
        for metric in (m for m in PER_CLASS_METRICS if m in b and m in r):
            counted = metric == "recall"
            row = _row(metric, b[metric], r[metric], b.get("support") if counted else None,
                       r.get("support") if counted else None, z)
            lines.append(f"| {name} " + row)
    return lines + [""]
