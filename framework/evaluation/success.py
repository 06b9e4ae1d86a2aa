"""Success criteria: the thresholds a user sets in ``success:`` before training, checked after.

``success: {accuracy: ">=0.90", wer: "<=0.15", critical_min_recall: ">=0.80"}`` names metrics the
evaluate stage reports (for the first evaluated split; ``test/accuracy`` for another split).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Mapping

from framework.errors import FrameworkError

NOT_FIT_EXIT_CODE = 3  # a run (or every job of a sweep) missed its criteria; 2 is a user error

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_PATTERN = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Criterion:
    """One threshold on one metric."""

    metric: str
    op: str
    threshold: float

    @property
    def higher_is_better(self) -> bool:
        """Direction implied by the comparison (used to rank sweep jobs)."""
        return self.op in (">=", ">")


@dataclass(frozen=True)
class Verdict:
    """A criterion checked against a measured value (``None`` when the metric is missing)."""

    criterion: Criterion
    value: float | None

    @property
    def passed(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        return _OPS[self.criterion.op](self.value, self.criterion.threshold)


def parse_criteria(spec: Mapping[str, str]) -> list[Criterion]:
    """Parse ``{metric: ">=0.9"}``; a malformed threshold is an error naming the metric."""
    criteria = []
    for metric, text in spec.items():
        match = _PATTERN.match(str(text))
        if not match:
            raise FrameworkError(
                f"success.{metric}: {text!r} is not a threshold; write it as an operator and a number, "
                f"e.g. success.{metric}='>=0.9' (operators: {', '.join(_OPS)})"
            )
        criteria.append(Criterion(metric, match.group(1), float(match.group(2))))
    return criteria


def check(criteria: list[Criterion], metrics: Mapping[str, float]) -> list[Verdict]:
    """Each criterion against ``metrics``; a metric the run did not report fails."""
    return [Verdict(c, metrics.get(c.metric)) for c in criteria]


def table(verdicts: list[Verdict]) -> str:
    """A Markdown pass/fail table."""
    lines = ["| metric | required | measured | result |", "|---|---|---|---|"]
    for v in verdicts:
        measured = "not reported" if v.value is None else f"{v.value:.4f}"
        lines.append(f"| {v.criterion.metric} | {v.criterion.op} {v.criterion.threshold:g} | {measured} | "
                     f"{'PASS' if v.passed else 'FAIL'} |")
    return "\n".join(lines)
