"""Calibration: ECE and MCE on hand-computed cases, temperature scaling, the report's pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framework.evaluation import calibration
from framework.evaluation.classification import evaluation_report
from framework.evaluation.types import Predictions


def test_ece_and_mce_match_a_hand_computed_case() -> None:
    # Two bins used: confidence 0.9 (4 items, 2 right: gap 0.4) and 0.6 (6 items, 6 right: gap 0.4 ... )
    scores = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 6)
    targets = np.array([0, 0, 1, 1] + [0, 0, 0, 0, 0, 1])
    rel = calibration.reliability(scores, targets, bins=10)
    # bin (0.8, 0.9]: accuracy 0.5, confidence 0.9 -> gap 0.4; bin (0.5, 0.6]: accuracy 5/6, confidence 0.6
    gap_low = abs(5 / 6 - 0.6)
    assert rel.ece == pytest.approx(0.4 * 4 / 10 + gap_low * 6 / 10)
    assert rel.mce == pytest.approx(0.4)
    assert rel.counts.sum() == 10 and (rel.counts > 0).sum() == 2


def test_perfectly_calibrated_predictions_have_zero_error() -> None:
    scores = np.array([[0.75, 0.25]] * 4)
    targets = np.array([0, 0, 0, 1])
    assert calibration.reliability(scores, targets).ece == pytest.approx(0.0)


def test_temperature_scaling_softens_an_over_confident_model_and_keeps_its_answers() -> None:
    rng = np.random.default_rng(0)
    n, c = 400, 4
    targets = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), targets] += 1.0  # right about 60% of the time ...
    scores = np.exp(logits * 5) / np.exp(logits * 5).sum(axis=1, keepdims=True)  # ... but sure of itself
    temperature = calibration.fit_temperature(scores, targets)
    assert temperature > 2.0  # close to the 5 that sharpened them
    scaled = calibration.apply_temperature(scores, temperature)
    assert (scaled.argmax(axis=1) == scores.argmax(axis=1)).all()
    assert calibration.reliability(scaled, targets).ece < calibration.reliability(scores, targets).ece / 2


def test_fit_temperature_needs_labeled_items() -> None:
    with pytest.raises(ValueError, match="labeled items"):
        calibration.fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def _predictions(split: str = "test") -> Predictions:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    return Predictions(split=split, ids=["a", "b", "c", "d"], targets=["x", "y", "y", None],
                       outputs=["x", "x", "y", "x"], scores=scores, classes=["x", "y"])


def test_evaluation_report_carries_ece_a_reliability_diagram_and_a_section(tmp_path: Path) -> None:
    report = evaluation_report(_predictions(), run_dir=tmp_path, out_dir=tmp_path / "eval")
    scores, targets = calibration.labeled_scores(_predictions())
    assert len(targets) == 3  # the unlabeled item is left out
    assert report.metrics["ece"] == pytest.approx(calibration.reliability(scores, targets).ece)
    assert "mce" in report.metrics and "ece_scaled" not in report.metrics
    assert Path("eval/reliability_test.png") in report.artifacts
    assert (tmp_path / "eval" / "reliability_test.png").read_bytes()[:4] == b"\x89PNG"
    assert "| uncalibrated |" in report.sections["Calibration (`test`)"]


def test_predictions_without_class_probabilities_get_no_calibration(tmp_path: Path) -> None:
    plain = Predictions(split="val", ids=["a", "b"], targets=["x", "y"], outputs=["x", "x"], classes=["x", "y"])
    report = evaluation_report(plain, run_dir=tmp_path, out_dir=tmp_path / "eval")
    assert "ece" not in report.metrics and not (tmp_path / "eval" / "reliability_val.png").exists()
