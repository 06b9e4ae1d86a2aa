"""Agreement statistics against known values."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from framework.annotation import (
    agreement_report,
    annotator_vs_consensus,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    overall_agreement,
    per_class_agreement,
)

# Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories; kappa = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def test_fleiss_known_value() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(np.array([[3, 0], [3, 0]])) == 1.0
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 0], [1, 2]]))


def test_fleiss_from_labels_matches_table() -> None:
    labels = {}
    for i, row in enumerate(FLEISS_TABLE):
        flat = [c for c, n in enumerate(row) for _ in range(n)]
        labels[f"i{i}"] = {f"r{(i + k) % 20}": c for k, c in enumerate(flat)}  # raters differ per item
    method, value = overall_agreement(labels)
    assert method == "fleiss" and value == pytest.approx(0.210, abs=5e-4)


def test_cohen_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 50).tolist()
    b = [x if rng.random() < 0.7 else int(rng.integers(0, 3)) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    labels = {f"i{k}": {"ann1": x, "ann2": y} for k, (x, y) in enumerate(zip(a, b))}
    assert overall_agreement(labels) == ("cohen", pytest.approx(cohen_kappa_score(a, b)))
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0 and math.isnan(cohen_kappa([], []))


def test_krippendorff_with_missing_labels() -> None:
    labels = {"i1": {"A": "x", "B": "x", "C": "x"}, "i2": {"A": "y", "B": "y"}, "i3": {"A": "x", "C": "y"},
              "i4": {"B": "z", "C": "z"}, "i5": {"A": "y", "B": "y", "C": "x"}}
    method, value = overall_agreement(labels)
    codes = {"x": 0, "y": 1, "z": 2}
    data = np.array([[codes[labels[i][a]] if a in labels[i] else np.nan for i in labels] for a in "ABC"])
    assert method == "krippendorff"
    assert value == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert krippendorff_alpha({"i1": {"A": "x", "B": "x"}}) == 1.0


def test_per_class_and_per_annotator() -> None:
    # "cat" is always agreed on; "dog" vs "fox" is where annotator C disagrees with A and B.
    labels = {}
    for k in range(30):
        truth = ["cat", "dog", "fox"][k % 3]
        wrong = {"dog": "fox", "fox": "dog", "cat": "cat"}[truth]
        labels[f"i{k}"] = {"A": truth, "B": truth, "C": wrong}
    per_class = per_class_agreement(labels)
    assert per_class["cat"] == pytest.approx(1.0) and per_class["dog"] < 0.5
    vs = annotator_vs_consensus(labels, {i: v["A"] for i, v in labels.items()})
    assert vs["A"]["agreement"] == 1.0 and vs["C"]["agreement"] == pytest.approx(1 / 3)
    report = agreement_report(labels)
    assert report.items == 30 and report.annotators == 3 and report.method == "fleiss"
    assert min(report.per_annotator, key=lambda a: report.per_annotator[a]["kappa"]) == "C"


def test_items_with_one_label_are_ignored() -> None:
    report = agreement_report({"i1": {"A": "x"}, "i2": {"B": "y"}})
    assert report.method == "none" and report.items == 0 and math.isnan(report.value)
