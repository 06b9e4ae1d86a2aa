"""Calibration of class probabilities: whether a stated confidence of 0.9 is right 90% of the time.

Any modality whose :class:`~framework.evaluation.types.Predictions` carry ``scores`` (``(N, C)``
class probabilities) gets, from :func:`framework.evaluation.classification.evaluation_report`:

* ``ece``: expected calibration error. Items are put into :data:`BINS` equal-width bins by their
  top-class probability (confidence); per bin, ``|accuracy - mean confidence|``; the mean of those
  gaps weighted by the share of items in each bin (Guo et al., 2017, eq. 3).
* ``mce``: maximum calibration error, the largest gap over the non-empty bins.
* a reliability diagram (accuracy against confidence per bin; the diagonal is perfect calibration),
  ``eval/reliability_<split>.png``.

Temperature scaling (``evaluation.calibration.temperature_scaling=true``) fits one scalar ``T`` on
the ``val`` split by minimising the negative log-likelihood of ``softmax(log p / T)`` (dividing
the logits by ``T``; ``log p`` equals the logits up to a per-item constant, which softmax
ignores), so the model's accuracy is unchanged and only its confidences move. The evaluate stage
reports ``ece_scaled``/``mce_scaled`` and ``temperature`` beside ``ece``/``mce`` and hands ``T`` to
the export (:attr:`framework.modality.RunContext.temperature`, and ``calibration.json`` in the
export directory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from framework.evaluation.types import Predictions

BINS = 15  # the usual choice (Guo et al.); 10-20 bins all give similar figures on a few thousand items
EPS = 1e-12  # probabilities are clipped to this before the log
CALIBRATION_JSON = "calibration.json"  # the export's record of the fitted temperature

__all__ = ["BINS", "CALIBRATION_JSON", "Reliability", "apply_temperature", "calibration_markdown", "fit_temperature",
           "labeled_scores", "plot_reliability", "reliability"]


@dataclass
class Reliability:
    """Per-bin figures of one set of predictions.

    Attributes:
        edges: ``(BINS + 1,)`` bin edges over ``[0, 1]``.
        confidence: ``(BINS,)`` mean top-class probability per bin (``nan`` for an empty bin).
        accuracy: ``(BINS,)`` share of correct top-class predictions per bin (``nan`` when empty).
        counts: ``(BINS,)`` items per bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the bins' ``|accuracy - confidence|`` weighted by their size."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(gaps * self.counts[filled]) / total)

    @property
    def mce(self) -> float:
        """Maximum calibration error: the largest ``|accuracy - confidence|`` of a non-empty bin."""
        filled = self.counts > 0
        if not filled.any():
            return float("nan")
        return float(np.max(np.abs(self.accuracy[filled] - self.confidence[filled])))

    def metrics(self, suffix: str = "") -> dict[str, float]:
        """``{"ece" + suffix: .., "mce" + suffix: ..}``."""
        return {f"ece{suffix}": self.ece, f"mce{suffix}": self.mce}


def labeled_scores(predictions: Predictions) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``(N, C)`` probabilities and ``(N,)`` target class indices of the labeled items whose
    target is one of ``classes``; ``None`` when the predictions carry no ``(N, C)`` scores."""
    if predictions.scores is None or not predictions.classes:
        return None
    scores = np.asarray(predictions.scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(predictions.classes):
        return None
    index = {str(c): i for i, c in enumerate(predictions.classes)}
    keep = [i for i, t in enumerate(predictions.targets) if t is not None and str(t) in index]
    targets = np.array([index[str(predictions.targets[i])] for i in keep], dtype=int)
    return scores[keep], targets


def reliability(scores: np.ndarray, targets: np.ndarray, bins: int = BINS) -> Reliability:
    """Bin ``(N, C)`` probabilities by their top-class probability; accuracy and confidence per bin.

    A confidence of exactly 1.0 falls in the last bin; bins are ``(lo, hi]`` with the first
    closed at 0, as in Guo et al.
    """
    scores = np.asarray(scores, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    confidence = scores.max(axis=1) if len(scores) else np.zeros(0)  # (N,)
    correct = (scores.argmax(axis=1) == np.asarray(targets)) if len(scores) else np.zeros(0, dtype=bool)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (N,) bin index
    counts = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / counts
        mean_acc = np.bincount(which, weights=correct.astype(float), minlength=bins) / counts
    return Reliability(edges, mean_conf, mean_acc, counts)


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: probabilities as if the logits had been divided by ``temperature``."""
    logits = np.log(np.clip(np.asarray(scores, dtype=float), EPS, 1.0)) / temperature  # (N, C)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _nll(scores: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    probs = apply_temperature(scores, temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], EPS, 1.0))))


def fit_temperature(scores: np.ndarray, targets: np.ndarray) -> float:
    """The temperature ``T`` in ``[0.05, 20]`` that minimises the negative log-likelihood of
    ``targets`` under ``softmax(log p / T)`` (searched over ``log T`` with scipy's bounded Brent).

    Raises:
        ValueError: when there are no labeled items to fit on.
    """
    from scipy.optimize import minimize_scalar

    if len(targets) == 0:
        raise ValueError("temperature scaling needs labeled items with class probabilities")
    result = minimize_scalar(lambda log_t: _nll(scores, targets, math.exp(log_t)),
                             bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(result.x))


def plot_reliability(curves: Sequence[tuple[str, Reliability]], path: Path, title: str = "") -> Path:
    """Write a reliability diagram: accuracy against confidence per bin for each named curve,
    the diagonal as perfect calibration, and the share of items per bin below (the first curve's)."""
    from framework.atomic import atomic_write_bytes
    from framework.evaluation import plots

    plt = plots.pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.6, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for (name, rel), colour in zip(curves, ("tab:blue", "tab:orange", "tab:green")):
        filled = rel.counts > 0
        ax.plot(rel.confidence[filled], rel.accuracy[filled], marker="o", markersize=3, color=colour,
                label=f"{name} (ECE {rel.ece:.3f})")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9)
    first = curves[0][1]
    centres = (first.edges[:-1] + first.edges[1:]) / 2
    hist.bar(centres, first.counts / max(first.counts.sum(), 1.0), width=np.diff(first.edges), color="tab:blue",
             alpha=0.6)
    hist.set_xlabel("confidence (top-class probability)")
    hist.set_ylabel("share")
    hist.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, plots.png_bytes(fig))


def calibration_markdown(curves: Sequence[tuple[str, Reliability]], temperature: float | None = None) -> str:
    """A table of ECE and MCE per named curve (``uncalibrated``, ``temperature-scaled``)."""
    lines = []
    if temperature is not None:
        lines += [f"Temperature fitted on `val`: T = {temperature:.4f} (T > 1 softens over-confident "
                  "probabilities, T < 1 sharpens under-confident ones).", ""]
    lines += ["| probabilities | ECE | MCE | items |", "|---|---|---|---|"]
    lines += [f"| {name} | {rel.ece:.4f} | {rel.mce:.4f} | {int(rel.counts.sum())} |" for name, rel in curves]
    return "\n".join(lines)
