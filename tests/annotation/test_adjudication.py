"""Majority vote and Dawid–Skene."""

from __future__ import annotations

import numpy as np

from framework.annotation import dawid_skene, majority_vote


def test_majority_vote_flags_ties() -> None:
    result = majority_vote({"i1": {"A": "x", "B": "x", "C": "y"}, "i2": {"A": "x", "B": "y"}})
    assert result["i1"].label == "x" and result["i1"].confidence == 2 / 3 and not result["i1"].tie
    assert result["i2"].tie and result["i2"].confidence == 0.5 and result["i2"].label == "x"


def _crowd(seed: int, n: int = 300) -> tuple[np.ndarray, dict]:
    """Two decent annotators (75% right) and one adversary who always gives the next class."""
    rng = np.random.default_rng(seed)
    k = 3
    truth = rng.integers(0, k, n)
    labels = {}
    for i, t in enumerate(truth):
        noisy = [int(t) if rng.random() < 0.75 else int(rng.integers(0, k)) for _ in range(2)]
        labels[f"i{i}"] = {"good1": noisy[0], "good2": noisy[1], "adversary": int((t + 1) % k)}
    return truth, labels


def test_dawid_skene_beats_majority_with_adversary() -> None:
    truth, labels = _crowd(0)
    mv = majority_vote(labels)
    ds = dawid_skene(labels)
    mv_acc = np.mean([mv[f"i{i}"].label == t for i, t in enumerate(truth)])
    ds_acc = np.mean([ds.consensus[f"i{i}"].label == t for i, t in enumerate(truth)])
    assert ds_acc > mv_acc + 0.15 and ds_acc > 0.95, (mv_acc, ds_acc)
    # The adversary's confusion matrix is learned as a shift: true k -> given k+1.
    shift = ds.confusion["adversary"]
    assert all(shift[t, (t + 1) % 3] > 0.9 for t in range(3))
    assert 0.0 < min(c.confidence for c in ds.consensus.values()) and ds.iterations >= 1
    assert np.isclose(ds.priors.sum(), 1.0)


def test_dawid_skene_handles_missing_labels_and_agrees_on_clear_items() -> None:
    labels = {"i1": {"A": "x", "B": "x"}, "i2": {"A": "y", "C": "y"}, "i3": {"B": "x", "C": "x", "A": "x"}}
    result = dawid_skene(labels)
    assert {i: c.label for i, c in result.consensus.items()} == {"i1": "x", "i2": "y", "i3": "x"}
