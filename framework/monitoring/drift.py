"""Drift verdicts: each signal of a new batch against the training reference.

A *signal* is one per-item quantity: an input feature the modality defines
(:meth:`framework.Modality.drift_features`: image brightness, audio duration, text length...) or
one of the model's own outputs (:func:`model_signals`: confidence, predicted class, the score
vector, an embedding). Each signal gets one verdict:

* scalars: PSI over the reference's deciles and a two-sample KS test;
* categories: PSI over the categories and a chi-square test;
* vectors: MMD with a permutation test (no PSI).

``drift`` needs both evidence and size: ``p < alpha`` *and* ``PSI >= psi_threshold`` (vectors:
``p < alpha``). ``watch`` is one of the two without the other (a small batch's noisy PSI, or a
large batch's tiny but certain shift); ``stable`` is neither. The batch has drifted when any
signal says ``drift``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from framework.evaluation.types import Predictions
from framework.monitoring import stats


@dataclass
class DriftConfig:
    """Thresholds and sizes of a drift check.

    Attributes:
        alpha: Significance level of every test.
        psi_threshold: PSI from which a shift counts as large enough to act on.
        review_share: Share of the batch sampled for human review (at least one item).
        reference_split: The run's split the batch is compared with (``train`` when it is absent).
        max_reference: The reference is subsampled to at most this many items.
        permutations: Permutations of the MMD test.
        seed: Seed of every subsample and permutation.
    """

    alpha: float = 0.01
    psi_threshold: float = 0.2
    review_share: float = 0.02
    reference_split: str = "val"
    max_reference: int = 2000
    permutations: int = 200
    seed: int = 0


@dataclass
class SignalResult:
    """One signal's comparison.

    Attributes:
        name: ``input/<feature>`` or ``model/<signal>``.
        kind: ``numeric``, ``categorical`` or ``vectors``.
        test: ``ks``, ``chi2`` or ``mmd``.
        statistic: The test statistic (KS D, chi-square, MMD²).
        p_value: The test's p-value.
        psi: The population stability index (``None`` for vectors).
        verdict: ``drift``, ``watch`` or ``stable``.
        reference_n: Items of the reference with a value.
        batch_n: Items of the batch with a value.
        summary: Reference and batch at a glance: means for scalars, shares for categories.
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float | None
    verdict: str
    reference_n: int
    batch_n: int
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class DriftReport:
    """Every signal's result and the sizes compared; :meth:`to_json` is ``monitor/drift.json``."""

    signals: list[SignalResult]
    reference_size: int
    batch_size: int
    alpha: float
    psi_threshold: float
    review: dict[str, Any] | None = None
    quarantined: list[dict[str, str]] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """Names of the signals whose verdict is ``drift``."""
        return [s.name for s in self.signals if s.verdict == "drift"]

    def signal(self, name: str) -> SignalResult:
        """The result of the signal called ``name``."""
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(f"no signal {name!r}; compared: {[s.name for s in self.signals]}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe payload (NaN as ``None``)."""
        payload = {"verdict": "drift" if self.drifted else "stable", "drifted": self.drifted,
                   "reference_size": self.reference_size, "batch_size": self.batch_size, "alpha": self.alpha,
                   "psi_threshold": self.psi_threshold, "signals": [asdict(s) for s in self.signals],
                   "review": self.review, "quarantined": self.quarantined}
        return _finite(payload)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def judge(p_value: float, psi: float | None, cfg: DriftConfig) -> str:
    """``drift``, ``watch`` or ``stable`` from a test's p-value and the PSI (see the module doc)."""
    evidence = p_value < cfg.alpha
    if psi is None:
        return "drift" if evidence else "stable"
    large = psi >= cfg.psi_threshold
    return "drift" if evidence and large else "watch" if evidence or large else "stable"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def compare_signal(name: str, reference: Any, batch: Any, cfg: DriftConfig) -> SignalResult | None:
    """Compare one signal; ``None`` when either side has no value to compare.

    ``reference`` and ``batch`` are per-item sequences (``None`` entries are left out) or
    ``(N, D)`` arrays of vectors.
    """
    if isinstance(reference, np.ndarray) and reference.ndim == 2:
        batch = np.asarray(batch)
        if not len(reference) or not len(batch):
            return None
        mmd2, p = stats.mmd_test(reference, batch, permutations=cfg.permutations, seed=cfg.seed)
        summary = {"reference_mean_norm": float(np.linalg.norm(reference.mean(0))),
                   "batch_mean_norm": float(np.linalg.norm(batch.mean(0)))}
        return SignalResult(name, "vectors", "mmd", mmd2, p, None, judge(p, None, cfg), len(reference), len(batch),
                            summary)
    ref = [v for v in reference if v is not None]
    new = [v for v in batch if v is not None]
    if not ref or not new:
        return None
    if all(_is_number(v) for v in ref + new):
        ref_f, new_f = [float(v) for v in ref], [float(v) for v in new]
        d, p = stats.ks_test(ref_f, new_f)
        psi = stats.psi_numeric(ref_f, new_f)
        summary = {"reference_mean": float(np.mean(ref_f)), "batch_mean": float(np.mean(new_f)),
                   "reference_std": float(np.std(ref_f)), "batch_std": float(np.std(new_f))}
        return SignalResult(name, "numeric", "ks", d, p, psi, judge(p, psi, cfg), len(ref), len(new), summary)
    ref_s, new_s = [str(v) for v in ref], [str(v) for v in new]
    chi2, p = stats.chi2_test(ref_s, new_s)
    psi = stats.psi_categorical(ref_s, new_s)
    summary = {"reference_shares": _shares(ref_s), "batch_shares": _shares(new_s)}
    return SignalResult(name, "categorical", "chi2", chi2, p, psi, judge(p, psi, cfg), len(ref), len(new), summary)


def _shares(values: Sequence[str], top: int = 12) -> dict[str, float]:
    counts = Counter(values)
    return {k: v / len(values) for k, v in counts.most_common(top)}


def confidences(predictions: Predictions) -> np.ndarray | None:
    """Per-item confidence (:meth:`Predictions.confidences`)."""
    return predictions.confidences()


def model_signals(predictions: Predictions, label_type: str) -> dict[str, Any]:
    """The model's own signals: ``model/confidence``, ``model/predicted_class`` (class outputs),
    ``model/scores`` (``(N, C)`` probabilities) and ``model/embeddings`` (``extras["embeddings"]``,
    ``(N, D)``), those the predictions carry."""
    out: dict[str, Any] = {}
    confidence = confidences(predictions)
    if confidence is not None:
        out["model/confidence"] = [float(c) for c in confidence]
    if label_type == "class":
        out["model/predicted_class"] = [str(o) for o in predictions.outputs]
    if predictions.scores is not None and np.asarray(predictions.scores).ndim == 2:
        out["model/scores"] = np.asarray(predictions.scores, dtype=float)
    if predictions.extras.get("embeddings") is not None:
        out["model/embeddings"] = np.asarray(predictions.extras["embeddings"], dtype=float)
    return out


def compare(reference: Mapping[str, Any], batch: Mapping[str, Any], cfg: DriftConfig, *,
            reference_size: int, batch_size: int) -> DriftReport:
    """Compare every signal present on both sides, in ``reference``'s order."""
    signals = []
    for name, ref_values in reference.items():
        if name not in batch:
            continue
        result = compare_signal(name, ref_values, batch[name], cfg)
        if result is not None:
            signals.append(result)
    return DriftReport(signals, reference_size, batch_size, cfg.alpha, cfg.psi_threshold)
