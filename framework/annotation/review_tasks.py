"""Sending items back to annotators: review queues and model pre-annotations as Label Studio tasks.

Both write a Label Studio *import* file (a JSON list of tasks). Annotators correct the tasks in
Label Studio; the project's export is read back with
:func:`framework.annotation.label_studio.import_label_studio`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping, Sequence

from framework.annotation.adjudication import Consensus, majority_vote
from framework.annotation.label_studio import annotation_entries, result_for, task_data, write_tasks
from framework.annotation.records import AnnotationRecord, by_item
from framework.data.records import Record
from framework.evaluation.types import Predictions


def items_needing_review(
    annotations: Iterable[AnnotationRecord],
    *,
    consensus: Mapping[str, Consensus] | None = None,
    gold: Mapping[str, Hashable] | None = None,
    min_confidence: float = 0.7,
) -> dict[str, list[str]]:
    """Items worth another look, with the reasons.

    Reasons: ``disagreement`` (annotators gave different labels), ``tie`` (no majority),
    ``low_confidence`` (consensus confidence below ``min_confidence``), ``failed_gold`` (a gold
    item that some annotator got wrong).

    Args:
        annotations: Every annotation record.
        consensus: Adjudicated labels (defaults to majority vote).
        gold: Known answers, item id -> label.
        min_confidence: Confidence under which a consensus label is sent back.

    Returns:
        Item id -> reasons, for the items with at least one reason.
    """
    labels = by_item(annotations)
    consensus = consensus if consensus is not None else majority_vote(labels)
    out: dict[str, list[str]] = {}
    for item, given in labels.items():
        reasons = []
        if len(set(map(repr, given.values()))) > 1:
            reasons.append("disagreement")
        verdict = consensus.get(item)
        if verdict is not None and verdict.tie:
            reasons.append("tie")
        if verdict is not None and verdict.confidence < min_confidence:
            reasons.append("low_confidence")
        if gold and item in gold and any(lab != gold[item] for lab in given.values()):
            reasons.append("failed_gold")
        if reasons:
            out[item] = reasons
    return out


def export_review_tasks(
    records: Sequence[Record],
    annotations: Iterable[AnnotationRecord],
    reasons: Mapping[str, Sequence[str]],
    path: Path,
    *,
    label_type: str = "class",
    consensus: Mapping[str, Consensus] | None = None,
    root: Path | None = None,
    item_data: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write the items in ``reasons`` as Label Studio tasks for review.

    Each task carries the item (``data``), every existing annotation with its annotator (so
    reviewers see who said what), the consensus as a prediction with its confidence, and the
    reasons in ``meta``. ``item_data`` gives a task's ``data`` directly (an export's own tasks,
    when there are no records); items with neither a record nor data are written with their id only.

    Returns:
        ``path``.
    """
    by_id = {r.id: r for r in records}
    anns: dict[str, list[AnnotationRecord]] = {}
    for ann in annotations:
        anns.setdefault(ann.item_id, []).append(ann)
    tasks = []
    for item, why in reasons.items():
        record = by_id.get(item)
        data, to_name = task_data(record, root) if record else ({"item_id": item}, "text")
        if record is None and item_data and item in item_data:
            data = {**item_data[item], "item_id": item}
            to_name = next((k for k in ("image", "audio", "video", "text") if k in data), "text")
        task: dict[str, Any] = {"data": data, "meta": {"review_reasons": list(why)},
                                "annotations": annotation_entries(anns.get(item, []), label_type=label_type, to_name=to_name)}
        if consensus and item in consensus:
            verdict = consensus[item]
            task["predictions"] = [{"model_version": "consensus", "score": verdict.confidence,
                                    "result": result_for(verdict.label, label_type=label_type, to_name=to_name)}]
        tasks.append(task)
    return write_tasks(tasks, path)


def export_preannotations(
    predictions: Predictions,
    records: Sequence[Record],
    path: Path,
    *,
    label_type: str,
    model_version: str,
    root: Path | None = None,
    meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write a model's predictions as Label Studio pre-annotations for annotators to correct.

    Args:
        predictions: The model's outputs; ``ids`` must name records in ``records``. When
            ``scores`` holds per-class probabilities, the top probability is the task's score;
            else ``extras["confidence"]`` (one float per item) is used when present.
        records: The records predicted on (media paths and text are shown to annotators).
        path: The import file to write.
        label_type: ``"class"`` (choices) or ``"text"`` (a textarea holding a transcript).
        model_version: Shown in Label Studio next to each prediction.
        root: Data root; media paths are written relative to it.
        meta: Item id -> the task's ``meta`` (why it was chosen, say), for the items that have one.

    Returns:
        ``path``.

    Raises:
        KeyError: naming the first prediction id that has no record.
    """
    by_id = {r.id: r for r in records}
    scores = predictions.confidences()
    tasks = []
    for n, (item, output) in enumerate(zip(predictions.ids, predictions.outputs)):
        if item not in by_id:
            raise KeyError(f"prediction for {item!r} has no record; pass the records that were predicted on")
        data, to_name = task_data(by_id[item], root)
        prediction: dict[str, Any] = {"model_version": model_version,
                                      "result": result_for(output, label_type=label_type, to_name=to_name)}
        if scores is not None:
            prediction["score"] = float(scores[n])
        task: dict[str, Any] = {"data": data, "predictions": [prediction]}
        if meta and item in meta:
            task["meta"] = dict(meta[item])
        tasks.append(task)
    return write_tasks(tasks, path)
