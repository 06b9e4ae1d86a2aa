"""Confident learning finds planted flipped labels."""

from __future__ import annotations

import numpy as np
import pytest

from framework.annotation import find_label_issues


def test_finds_planted_flips_in_noisy_probabilities() -> None:
    rng = np.random.default_rng(0)
    n, k = 600, 4
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, 30, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, k, 30)) % k
    issues = find_label_issues(labels, probs)
    found = set(issues.indices.tolist())
    recall = len(found & set(flipped.tolist())) / 30
    precision = len(found & set(flipped.tolist())) / max(len(found), 1)
    assert recall >= 0.7 and precision >= 0.9, (recall, precision)
    assert np.all(np.diff(issues.scores) >= 0)  # most suspicious first
    assert issues.confident_joint.sum() <= n and issues.thresholds.shape == (k,)
    assert all(issues.suggested != labels[issues.indices])


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        find_label_issues(np.array([0, 1]), np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="class indices"):
        find_label_issues(np.array([0, 5]), np.ones((2, 2)) / 2)
