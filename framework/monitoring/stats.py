"""Two-sample statistics of drift: PSI, KS and chi-square for scalars and categories, MMD for vectors.

Each function compares a *reference* sample (the training data, the model's outputs on it) with a
*batch* (new inputs) and is deterministic given its ``seed``.

* :func:`psi_numeric` / :func:`psi_categorical`: the population stability index,
  ``sum((b - r) * ln(b / r))`` over bins (reference quantiles, up to ten, fewer for small
  samples, and a bin each side for values outside the reference's range) or categories, with half a pseudo-count per bin, an effect size:
  below 0.1 is usually read as stable, 0.1-0.25 as a moderate shift, above 0.25 as a large one.
* :func:`ks_test` (scipy's two-sample Kolmogorov-Smirnov) and :func:`chi2_test` (scipy's
  contingency test): the evidence that the two samples differ at all.
* :func:`mmd_test`: the maximum mean discrepancy of two sets of vectors (class-probability
  vectors, embeddings) under a Gaussian kernel (median-distance bandwidth), with a permutation
  p-value.
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np

SMOOTHING = 0.5  # pseudo-count added to every bin, so an empty bin does not make PSI explode


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float) + SMOOTHING
    return counts / counts.sum()


def _psi(ref_counts: np.ndarray, new_counts: np.ndarray) -> float:
    used = (np.asarray(ref_counts) + np.asarray(new_counts)) > 0  # a bin neither sample falls in says nothing
    ref_share, new_share = _shares(np.asarray(ref_counts)[used]), _shares(np.asarray(new_counts)[used])
    return float(np.sum((new_share - ref_share) * np.log(new_share / ref_share)))


def psi_bins(n_reference: int, n_batch: int, most: int = 10) -> int:
    """Bins for a PSI: ``most``, fewer for small samples (about 10 items of the smaller one per bin,
    at least 2), since an empty bin in a small sample reads as a shift."""
    return int(np.clip(min(n_reference, n_batch) // 10, 2, most))


def psi_edges(reference: Sequence[float], bins: int) -> np.ndarray:
    """Bin edges of a PSI (values equal to an edge fall in the bin above it): the reference's
    inner quantiles, plus its minimum and just above its maximum, so that values outside the
    reference's range get bins of their own. A single-valued reference (every image 32 px wide)
    thus has three bins: below, at and above its value, and a batch at another value scores a
    large PSI instead of sharing the reference's one bin."""
    ref = np.asarray(reference, dtype=float)
    inner = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(np.concatenate([inner, [ref.min(), np.nextafter(ref.max(), np.inf)]]))


def psi_numeric(reference: Sequence[float], batch: Sequence[float], bins: int | None = None) -> float:
    """PSI of a scalar over :func:`psi_edges` (:func:`psi_bins` quantile bins unless given; fewer
    when values tie; one more each side for values outside the reference's range)."""
    ref = np.asarray(reference, dtype=float)
    new = np.asarray(batch, dtype=float)
    bins = bins or psi_bins(len(ref), len(new))
    edges = psi_edges(ref, bins)
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    new_counts = np.bincount(np.searchsorted(edges, new, side="right"), minlength=len(edges) + 1)
    return _psi(ref_counts, new_counts)


def psi_categorical(reference: Sequence[Hashable], batch: Sequence[Hashable]) -> float:
    """PSI of a category mix (every category seen in either sample is a bin)."""
    ref, new = Counter(reference), Counter(batch)
    cats = sorted(set(ref) | set(new), key=str)
    return _psi(np.array([ref[c] for c in cats]), np.array([new[c] for c in cats]))


def ks_test(reference: Sequence[float], batch: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (1.0 when both samples are constant
    and equal)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(reference, dtype=float), np.asarray(batch, dtype=float))
    p = float(result.pvalue)
    return float(result.statistic), 1.0 if np.isnan(p) else p


def chi2_test(reference: Sequence[Hashable], batch: Sequence[Hashable]) -> tuple[float, float]:
    """Chi-square test of independence of category and sample: statistic and p-value."""
    from scipy.stats import chi2_contingency

    ref, new = Counter(reference), Counter(batch)
    cats = sorted(set(ref) | set(new), key=str)
    if len(cats) < 2:
        return 0.0, 1.0
    table = np.array([[ref[c] for c in cats], [new[c] for c in cats]], dtype=float)  # (2, K)
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def _mmd2(kernel: np.ndarray, first: np.ndarray) -> float:
    """Biased MMD² of the pooled kernel matrix, ``first`` marking the rows of the first sample."""
    a, b = first, ~first
    return float(kernel[np.ix_(a, a)].mean() + kernel[np.ix_(b, b)].mean() - 2.0 * kernel[np.ix_(a, b)].mean())


def mmd_test(reference: np.ndarray, batch: np.ndarray, *, permutations: int = 200, max_items: int = 400,
             seed: int = 0) -> tuple[float, float]:
    """MMD² of two sets of vectors with a Gaussian kernel, and its permutation p-value.

    Args:
        reference: ``(N, D)`` vectors.
        batch: ``(M, D)`` vectors.
        permutations: Random relabelings of the pooled sample for the p-value.
        max_items: Each sample is subsampled to at most this many rows (the kernel is quadratic).
        seed: Seed of the subsampling and the permutations.

    Returns:
        ``(mmd2, p_value)``; the p-value counts the observed labeling, so it is at least
        ``1 / (permutations + 1)``.
    """
    rng = np.random.default_rng(seed)
    ref = np.asarray(reference, dtype=float).reshape(len(reference), -1)
    new = np.asarray(batch, dtype=float).reshape(len(batch), -1)
    if len(ref) > max_items:
        ref = ref[rng.choice(len(ref), max_items, replace=False)]
    if len(new) > max_items:
        new = new[rng.choice(len(new), max_items, replace=False)]
    pooled = np.concatenate([ref, new])  # (N + M, D)
    dists = _sq_dists(pooled, pooled)
    positive = dists[dists > 0]
    bandwidth = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-dists / bandwidth)
    first = np.zeros(len(pooled), dtype=bool)
    first[: len(ref)] = True
    observed = _mmd2(kernel, first)
    exceed = sum(_mmd2(kernel, rng.permutation(first)) >= observed for _ in range(permutations))
    return observed, float((exceed + 1) / (permutations + 1))
