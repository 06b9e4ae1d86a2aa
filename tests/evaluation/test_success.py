"""Success criteria: each operator decides as written, and an unreported metric fails."""

from __future__ import annotations

import pytest

from framework.errors import FrameworkError
from framework.evaluation.success import check, parse_criteria, table


@pytest.mark.parametrize(("spec", "value", "passed"), [
    (">=0.9", 0.95, True), (">=0.9", 0.9, True), (">=0.9", 0.85, False),
    ("<=0.15", 0.10, True), ("<=0.15", 0.15, True), ("<=0.15", 0.20, False),
    (">0.5", 0.5, False), (">0.5", 0.6, True),
    ("<0.5", 0.5, False), ("<0.5", 0.4, True),
    ("==3", 3.0, True), ("==3", 2.0, False),
])
def test_each_operator_decides_as_written(spec: str, value: float, passed: bool) -> None:
    [verdict] = check(parse_criteria({"m": spec}), {"m": value})
    assert verdict.passed is passed


def test_lower_is_better_criterion_fails_above_its_threshold() -> None:
    verdicts = check(parse_criteria({"wer": "<=0.15", "accuracy": ">=0.9"}), {"wer": 0.4, "accuracy": 0.95})
    assert [(v.criterion.metric, v.criterion.op, v.passed) for v in verdicts] == [
        ("wer", "<=", False), ("accuracy", ">=", True)]
    assert not verdicts[0].criterion.higher_is_better and verdicts[1].criterion.higher_is_better
    assert "| wer | <= 0.15 | 0.4000 | FAIL |" in table(verdicts)


def test_a_metric_never_reported_fails_and_says_so() -> None:
    [verdict] = check(parse_criteria({"macro_f1": ">=0.0"}), {"accuracy": 1.0})
    assert verdict.value is None and verdict.passed is False
    assert "| macro_f1 | >= 0 | not reported | FAIL |" in table([verdict])
    [nan] = check(parse_criteria({"accuracy": ">=0.0"}), {"accuracy": float("nan")})
    assert nan.passed is False


def test_malformed_threshold_names_the_metric() -> None:
    with pytest.raises(FrameworkError, match=r"success.accuracy: 'high' is not a threshold"):
        parse_criteria({"accuracy": "high"})
