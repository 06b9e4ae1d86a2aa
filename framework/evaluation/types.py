"""The evaluation interface: predictions in, a report out.

A modality's ``evaluate`` turns its model's outputs into :class:`Predictions`; metrics (built-in
and from the ``framework_metrics`` hook) read them; the result is an :class:`EvalReport` that the
evaluate stage checks against the ``success:`` criteria and writes to ``report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Predictions:
    """Model outputs aligned with their records.

    Attributes:
        split: The split these predictions are for.
        ids: Record ids, one per prediction.
        targets: Reference values (class names, transcripts, preferred answers).
        outputs: Predicted values of the same kind as ``targets``.
        scores: Optional per-item class probabilities, shape ``(N, C)``, ordered like ``classes``.
        classes: Class names for classification-like tasks.
        slices: Per-item slice values (``language``, ``lighting``...), for per-slice metrics.
        extras: Anything else a metric may need (per-item losses, reward margins, logits);
            ``extras["inputs"]``, one string per item, is the input as a person should read it
            (human evaluation shows it beside the outputs).
    """

    split: str
    ids: list[str]
    targets: list[Any]
    outputs: list[Any]
    scores: Any = None
    classes: list[str] = field(default_factory=list)
    slices: list[Mapping[str, str]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.targets) == len(self.outputs)):
            raise ValueError(
                f"Predictions for split {self.split!r} are misaligned: {len(self.ids)} ids, "
                f"{len(self.targets)} targets, {len(self.outputs)} outputs"
            )

    def confidences(self) -> "np.ndarray | None":
        """``(N,)`` per-item confidence: the top class probability of ``scores``, else
        ``extras["confidence"]``, else ``None`` (a modality that measures none)."""
        import numpy as np

        if self.scores is not None:
            scores = np.asarray(self.scores, dtype=float)
            return scores.max(axis=1) if scores.ndim == 2 else scores
        confidence = self.extras.get("confidence")
        return None if confidence is None else np.asarray(confidence, dtype=float)


@runtime_checkable
class Metric(Protocol):
    """A metric contributed by a plugin through ``framework_metrics``.

    ``compute`` returns a flat mapping of metric name to value; names must be unique across
    metrics, since success criteria refer to them by name.
    """

    name: str

    def compute(self, predictions: Predictions) -> Mapping[str, float]:
        """Called once per evaluated split, after the modality's own metrics."""
        ...


@dataclass
class EvalReport:
    """What the evaluate stage produced for one split.

    Attributes:
        split: The evaluated split.
        metrics: Flat name -> value, used by success criteria and sweep summaries
            (``accuracy``, ``macro_f1``, ``wer``, ``min_class_recall``...).
        per_class: Class -> metric -> value.
        per_slice: ``field=value`` -> metric -> value (``language=hi`` -> ``wer`` -> 0.21).
        robustness: Condition name -> metric -> value, under perturbations.
        notes: Plain-language findings ("weakest class `7`: recall 0.61 vs 0.93 overall").
        artifacts: Files written (confusion matrix PNG, prediction CSV...), relative to the run dir.
        sections: Extra Markdown sections for ``report.md``, heading -> body.
    """

    split: str
    metrics: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    per_slice: dict[str, dict[str, float]] = field(default_factory=dict)
    robustness: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)

    def merge_metrics(self, extra: Mapping[str, float], source: str) -> None:
        """Add metrics from a plugin; a name clash is an error naming the source."""
        clash = sorted(set(extra) & set(self.metrics))
        if clash:
            raise ValueError(f"metric plugin {source!r} returns names already reported: {clash}")
        self.metrics.update({k: float(v) for k, v in extra.items()})


def flatten(reports: Sequence[EvalReport]) -> dict[str, float]:
    """Flat metrics of several reports; metrics of splits other than the first get a prefix."""
    flat: dict[str, float] = {}
    for i, report in enumerate(reports):
        prefix = "" if i == 0 else f"{report.split}/"
        flat.update({prefix + k: v for k, v in report.metrics.items()})
    return flat
