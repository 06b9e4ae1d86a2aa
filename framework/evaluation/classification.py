"""Classification metrics any modality can use: per-class report, confusion matrix, weakest class.

A modality that predicts one class per item fills :class:`~framework.evaluation.types.Predictions`
with class names (``targets``/``outputs``) and calls :func:`evaluation_report` for the whole
:class:`~framework.evaluation.types.EvalReport` of a split (metrics, per class, per slice, notes,
confusion matrix), or the pieces (:func:`classification_report`, :func:`plot_confusion`...) to
assemble its own.

Items whose target is ``None`` (unlabeled) are left out of every figure. Per-class numbers use
scikit-learn; macro averages are over the classes that occur in the targets or the outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from framework.evaluation.types import EvalReport, Predictions
from framework.wording import plural

# A public module (docs/plugins.md): these names are its API.
__all__ = ["ClassificationResult", "classification_report", "confusion_markdown", "critical_classes", "evaluation_report",
           "plot_confusion", "slice_accuracy", "top_k", "weakest_class", "weakest_class_note"]


@dataclass
class ClassificationResult:
    """Figures of one split.

    Attributes:
        classes: Class names, the order of the confusion matrix's rows and columns.
        metrics: ``accuracy``, ``macro_precision``/``macro_recall``/``macro_f1``,
            ``weighted_precision``/``weighted_recall``/``weighted_f1``, ``min_class_recall``
            and ``count`` (labeled items).
        per_class: Class -> ``precision``, ``recall``, ``f1``, ``support``, for classes that occur.
        confusion: ``(C, C)`` counts; row = true class, column = predicted class.
    """

    classes: list[str]
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion: np.ndarray


def _labeled(predictions: Predictions) -> tuple[list[str], list[str]]:
    pairs = [(str(t), str(o)) for t, o in zip(predictions.targets, predictions.outputs) if t is not None]
    return [t for t, _ in pairs], [o for _, o in pairs]


def _class_order(predictions: Predictions, y_true: Iterable[str], y_pred: Iterable[str]) -> list[str]:
    classes = [str(c) for c in predictions.classes]
    # Labels the model does not know (or outputs outside the list) still get a row and a column.
    extra = sorted((set(y_true) | set(y_pred)) - set(classes))
    return classes + extra


def classification_report(predictions: Predictions) -> ClassificationResult:
    """Accuracy, per-class precision/recall/F1, macro and weighted averages, confusion matrix.

    Args:
        predictions: Class-name ``targets`` and ``outputs``; ``classes`` fixes the matrix order
            (labels outside it are appended, sorted).

    Raises:
        ValueError: when no item is labeled.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = _labeled(predictions)
    if not y_true:
        raise ValueError(f"split {predictions.split!r} has no labeled items to evaluate")
    classes = _class_order(predictions, y_true, y_pred)
    present = [c for c in classes if c in set(y_true) | set(y_pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, average=None, zero_division=0
    )
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": float(s)}
        for name, p, r, f, s in zip(present, precision, recall, f1, support)
    }
    weights = support / support.sum()
    recalls = [row["recall"] for row in per_class.values() if row["support"] > 0]
    metrics = {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "weighted_precision": float(np.sum(precision * weights)),
        "weighted_recall": float(np.sum(recall * weights)),
        "weighted_f1": float(np.sum(f1 * weights)),
        "min_class_recall": float(min(recalls)),
        "count": float(len(y_true)),
    }
    confusion = confusion_matrix(y_true, y_pred, labels=classes)  # (C, C)
    return ClassificationResult(classes, metrics, per_class, confusion)


def _weakest(result: ClassificationResult) -> list[str]:
    """Classes with items at the lowest recall, tied ones all (empty when every class with items
    has the same recall: nothing is weakest, e.g. when all are perfect)."""
    rows = {name: row for name, row in result.per_class.items() if row["support"] > 0}
    recalls = {row["recall"] for row in rows.values()}
    if len(rows) < 2 or len(recalls) < 2:
        return []
    low = min(recalls)
    return sorted(name for name, row in rows.items() if row["recall"] == low)


def weakest_class(result: ClassificationResult) -> str | None:
    """The class with the lowest recall among those with items (ties: lower F1, then name);
    ``None`` for one class, or when every class has the same recall (all perfect, say)."""
    tied = _weakest(result)
    return min(tied, key=lambda n: (result.per_class[n]["f1"], n)) if tied else None


def weakest_class_note(result: ClassificationResult) -> str | None:
    """``"weakest class `7`: recall 0.61 vs accuracy 0.93 overall"``; for a tie, ``"weakest classes
    `3`, `8` (tied): recall 0.61 ..."``; ``None`` when no class is weaker than another."""
    tied = _weakest(result)
    if not tied:
        return None
    accuracy = result.metrics["accuracy"]
    if len(tied) > 1:
        recall = result.per_class[tied[0]]["recall"]
        return (f"weakest classes {', '.join(f'`{n}`' for n in tied)} (tied): recall {recall:.2f} each vs accuracy "
                f"{accuracy:.2f} overall")
    row = result.per_class[tied[0]]
    return (
        f"weakest class `{tied[0]}`: recall {row['recall']:.2f} vs accuracy {accuracy:.2f} overall "
        f"({plural(int(row['support']), 'item')}; precision {row['precision']:.2f})"
    )


def critical_classes(result: ClassificationResult, critical: Sequence[str], split: str) -> tuple[dict[str, float], list[str]]:
    """Recall of the classes that matter most.

    Args:
        result: The split's figures.
        critical: Class names named critical in the config.
        split: The split's name, for the notes.

    Returns:
        ``{"critical_min_recall": ...}`` (empty when none of them has items) and one note per
        critical class, including those with no items in the split.
    """
    metrics: dict[str, float] = {}
    notes: list[str] = []
    recalls = []
    for name in (str(c) for c in critical):
        row = result.per_class.get(name)
        if row is None or row["support"] == 0:
            notes.append(f"critical class `{name}` has no items in split `{split}`; its recall is not measured")
            continue
        recalls.append(row["recall"])
        notes.append(
            f"critical class `{name}`: recall {row['recall']:.2f}, precision {row['precision']:.2f} "
            f"({plural(int(row['support']), 'item')})"
        )
    if recalls:
        metrics["critical_min_recall"] = float(min(recalls))
    return metrics, notes


def slice_accuracy(predictions: Predictions) -> dict[str, dict[str, float]]:
    """Accuracy and item count per slice value: ``{"lighting=dark": {"accuracy": .., "count": ..}}``."""
    if not predictions.slices:
        return {}
    hits: dict[str, list[bool]] = {}
    for target, output, slices in zip(predictions.targets, predictions.outputs, predictions.slices):
        if target is None:
            continue
        for key, value in sorted(slices.items()):
            hits.setdefault(f"{key}={value}", []).append(str(target) == str(output))
    return {name: {"accuracy": float(np.mean(h)), "count": float(len(h))} for name, h in sorted(hits.items())}


def confusion_markdown(confusion: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix as a Markdown table (rows: true class, columns: predicted)."""
    header = "| true \\ predicted | " + " | ".join(f"`{c}`" for c in classes) + " |"
    rule = "|---" * (len(classes) + 1) + "|"
    rows = [f"| `{name}` | " + " | ".join(str(int(v)) for v in confusion[i]) + " |" for i, name in enumerate(classes)]
    return "\n".join([header, rule, *rows])


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """Write the confusion matrix as a PNG; colours are row-normalised (recall), cells show counts.

    Args:
        confusion: ``(C, C)`` counts, row = true class.
        classes: Names of the rows/columns.
        path: Output ``.png`` path (parents are created).
        title: Figure title.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)  # (C, C), rows sum to 1
    side = max(4.0, 0.45 * len(classes) + 2.0)
    fig, ax = plt.subplots(figsize=(side, side))
    try:
        ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, labels=[str(c) for c in classes], rotation=90 if len(classes) > 10 else 0)
        ax.set_yticks(ticks, labels=[str(c) for c in classes])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if title:
            ax.set_title(title)
        if len(classes) <= 30:  # beyond that the numbers are unreadable anyway
            for (i, j), value in np.ndenumerate(counts):
                if value:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, str(int(value)), ha="center", va="center", color=colour, fontsize=8)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")  # the suffix tells savefig the format
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)  # atomic: a reader never sees half a plot
    finally:
        plt.close(fig)
    return path


def top_k(scores: Any, classes: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes per item, best first, from ``(N, C)`` probabilities."""
    probs = np.asarray(scores, dtype=float)  # (N, C)
    k = max(1, min(k, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
    return [[(str(classes[j]), float(probs[i, j])) for j in row] for i, row in enumerate(order)]


def evaluation_report(
    predictions: Predictions,
    *,
    run_dir: Path,
    out_dir: Path,
    critical: Sequence[str] = (),
) -> EvalReport:
    """The :class:`EvalReport` of one classification split, for any modality.

    Metrics (accuracy, macro/weighted precision/recall/F1, ``min_class_recall``), per-class and
    per-slice figures, the weakest-class note, ``critical_min_recall`` and a note per class in
    ``critical``, and the confusion matrix as a Markdown section and ``confusion_<split>.png`` in
    ``out_dir`` (recorded relative to ``run_dir``).
    """
    split = predictions.split
    result = classification_report(predictions)
    report = EvalReport(split, metrics=dict(result.metrics), per_class=result.per_class)
    report.per_slice = slice_accuracy(predictions)
    note = weakest_class_note(result)
    if note:
        report.notes.append(note)
    if critical:
        metrics, notes = critical_classes(result, critical, split)
        report.metrics.update(metrics)
        report.notes.extend(notes)
    png = plot_confusion(result.confusion, result.classes, out_dir / f"confusion_{split}.png",
                                  title=f"confusion matrix, split {split}")
    report.artifacts.append(png.relative_to(run_dir) if png.is_relative_to(run_dir) else png)
    report.sections[f"Confusion matrix (`{split}`; rows: true class)"] = confusion_markdown(
        result.confusion, result.classes
    )
    return report
