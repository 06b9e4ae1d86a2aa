"""Label-issue detection by confident learning (Northcutt et al., 2021), written from the paper.

Given out-of-sample predicted probabilities (from cross-validation, or a model that did not
train on these items), an item is a likely label issue when the model is confidently sure it
belongs to another class:

1. per-class threshold ``t_j`` = mean predicted probability of class ``j`` over the items
   labelled ``j`` (the model's average self-confidence on that class);
2. an item is *confidently* class ``j`` when ``p[i, j] >= t_j``; among several such classes the
   most probable one is taken;
3. the confident joint counts (given label, confident class) pairs; items off its diagonal are the
   issues, ranked by self-confidence ``p[i, given label]`` (lowest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """Result of :func:`find_label_issues`.

    Attributes:
        indices: Positions of likely mislabelled items, most suspicious first.
        scores: Self-confidence ``p[i, label_i]`` of those items (lower = more suspicious).
        suggested: The confident class of each flagged item.
        confident_joint: ``(K, K)`` counts, row = given label, column = confident class.
        thresholds: Per-class thresholds ``t_j``.
    """

    indices: np.ndarray
    scores: np.ndarray
    suggested: np.ndarray
    confident_joint: np.ndarray
    thresholds: np.ndarray


def per_class_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Mean self-confidence per class; a class with no labelled items gets threshold 1 (never confident)."""
    k = pred_probs.shape[1]
    thresholds = np.ones(k)
    for j in range(k):
        mask = labels == j
        if mask.any():
            thresholds[j] = pred_probs[mask, j].mean()
    return thresholds


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray) -> LabelIssues:
    """Find likely label errors from out-of-sample predicted probabilities.

    Args:
        labels: Given labels as class indices, shape ``(N,)``.
        pred_probs: Out-of-sample probabilities, shape ``(N, K)``, rows summing to 1.

    Returns:
        The flagged items, ranked, with the confident joint.

    Raises:
        ValueError: when shapes disagree or a label is outside ``[0, K)``.
    """
    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(pred_probs, dtype=float)  # (N, K)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"pred_probs must be (N, K) with N = len(labels) = {labels.shape[0]}, got {probs.shape}")
    k = probs.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k}), got range [{labels.min()}, {labels.max()}]")
    thresholds = per_class_thresholds(labels, probs)
    above = probs >= thresholds  # (N, K)
    has_confident = above.any(axis=1)
    confident = np.where(above, probs, -1.0).argmax(axis=1)  # (N,), most probable confident class
    joint = np.zeros((k, k), dtype=int)
    np.add.at(joint, (labels[has_confident], confident[has_confident]), 1)
    flagged = np.flatnonzero(has_confident & (confident != labels))
    self_conf = probs[flagged, labels[flagged]]
    order = np.argsort(self_conf, kind="stable")
    return LabelIssues(flagged[order], self_conf[order], confident[flagged][order], joint, thresholds)
