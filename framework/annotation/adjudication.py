"""Turning several annotators' labels into one consensus label per item.

Two methods, both returning a label and a confidence per item:

* :func:`majority_vote`: the most frequent label; ties are flagged (and broken by label order,
  so the result is deterministic) for a reviewer to settle.
* :func:`dawid_skene`: EM over per-annotator confusion matrices (Dawid & Skene, 1979). It
  learns that an annotator is careless or systematically wrong and weighs them accordingly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Mapping

import numpy as np

ItemLabels = Mapping[str, Mapping[str, Hashable]]


@dataclass(frozen=True)
class Consensus:
    """The adjudicated label of one item.

    Attributes:
        label: The consensus label.
        confidence: Share of votes (majority vote) or posterior probability (Dawid–Skene).
        tie: True when several labels had the top vote count (majority vote only).
        votes: Number of labels the item had.
    """

    label: Hashable
    confidence: float
    tie: bool = False
    votes: int = 0


def majority_vote(item_labels: ItemLabels) -> dict[str, Consensus]:
    """The most frequent label per item; ties flagged and broken by ``repr`` order."""
    out = {}
    for item, labels in item_labels.items():
        counts = Counter(labels.values())
        if not counts:
            continue
        top = max(counts.values())
        winners = sorted((lab for lab, c in counts.items() if c == top), key=repr)
        out[item] = Consensus(winners[0], top / len(labels), tie=len(winners) > 1, votes=len(labels))
    return out


@dataclass
class DawidSkeneResult:
    """Dawid–Skene output.

    Attributes:
        consensus: Item -> consensus label and posterior confidence.
        classes: Label order of the matrices.
        priors: Estimated class frequencies, shape ``(K,)``.
        confusion: Annotator -> ``(K, K)`` matrix, row = true class, column = given label.
        iterations: EM iterations run.
    """

    consensus: dict[str, Consensus]
    classes: list[Hashable]
    priors: np.ndarray
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    iterations: int = 0


def _encode(item_labels: ItemLabels) -> tuple[list[str], list[str], list[Hashable], np.ndarray]:
    items = [i for i, labels in item_labels.items() if labels]
    annotators = sorted({a for labels in item_labels.values() for a in labels})
    classes = sorted({lab for labels in item_labels.values() for lab in labels.values()}, key=repr)
    a_idx, c_idx = {a: k for k, a in enumerate(annotators)}, {c: k for k, c in enumerate(classes)}
    obs = np.full((len(items), len(annotators)), -1, dtype=int)  # (N, A); -1 = no label
    for n, item in enumerate(items):
        for who, lab in item_labels[item].items():
            obs[n, a_idx[who]] = c_idx[lab]
    return items, annotators, classes, obs


def _m_step(posterior: np.ndarray, obs: np.ndarray, k: int, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    priors = posterior.mean(axis=0)  # (K,)
    confusion = np.full((obs.shape[1], k, k), smoothing)  # (A, K true, K given)
    for a in range(obs.shape[1]):
        seen = obs[:, a] >= 0
        np.add.at(confusion[a].T, obs[seen, a], posterior[seen])  # rows of .T are given labels
    confusion /= confusion.sum(axis=2, keepdims=True)
    return priors, confusion


def _e_step(priors: np.ndarray, confusion: np.ndarray, obs: np.ndarray) -> np.ndarray:
    log_post = np.tile(np.log(priors + 1e-12), (obs.shape[0], 1))  # (N, K)
    for a in range(obs.shape[1]):
        seen = obs[:, a] >= 0
        log_post[seen] += np.log(confusion[a][:, obs[seen, a]]).T
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def dawid_skene(item_labels: ItemLabels, *, max_iter: int = 100, tol: float = 1e-6, smoothing: float = 0.01) -> DawidSkeneResult:
    """Consensus labels by Dawid–Skene EM, started from the majority-vote shares.

    Args:
        item_labels: ``item -> annotator -> label``.
        max_iter: Upper bound on EM iterations.
        tol: Stop when no posterior moves by more than this.
        smoothing: Pseudo-count added to every confusion cell, so that an annotator who never
            used a label does not get probability zero for it.

    Returns:
        The consensus per item plus the learned priors and confusion matrices.
    """
    items, annotators, classes, obs = _encode(item_labels)
    k = len(classes)
    posterior = np.zeros((len(items), k))  # (N, K), majority-vote shares to start
    for a in range(obs.shape[1]):
        seen = obs[:, a] >= 0
        posterior[np.flatnonzero(seen), obs[seen, a]] += 1
    posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1)
    priors, confusion = _m_step(posterior, obs, k, smoothing)
    it = 0
    for it in range(1, max_iter + 1):
        new = _e_step(priors, confusion, obs)
        priors, confusion = _m_step(new, obs, k, smoothing)
        done = np.abs(new - posterior).max() < tol
        posterior = new
        if done:
            break
    best = posterior.argmax(axis=1)
    consensus = {
        item: Consensus(classes[best[n]], float(posterior[n, best[n]]), votes=int((obs[n] >= 0).sum()))
        for n, item in enumerate(items)
    }
    return DawidSkeneResult(consensus, classes, priors, {a: confusion[j] for j, a in enumerate(annotators)}, it)
