"""Annotation records: who labelled which item, with what, and when."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping


@dataclass(frozen=True)
class AnnotationRecord:
    """One annotator's label for one item.

    Attributes:
        item_id: The record id the label is for (matches :attr:`framework.data.Record.id`).
        annotator: Who labelled it (a Label Studio user id or e-mail, or any stable name).
        label: The label: a class name, a transcript, ``"chosen"``/``"rejected"``... Must be
            hashable (several choices become a tuple).
        timestamp: When it was made (ISO 8601 text, as exported), or ``None``.
        guideline_version: Version of the annotation guidelines in force, or ``""``.
        confidence: The annotator's or model's confidence in ``[0, 1]``, when known.
        lead_time: Seconds spent on the item, when known.
        source: Where the record came from (``export.json:task[3]``).
    """

    item_id: str
    annotator: str
    label: Hashable
    timestamp: str | None = None
    guideline_version: str = ""
    confidence: float | None = None
    lead_time: float | None = None
    source: str = ""


def by_item(annotations: Iterable[AnnotationRecord]) -> dict[str, dict[str, Hashable]]:
    """Labels grouped as ``item_id -> annotator -> label``.

    When an annotator labelled an item twice, the later record (by timestamp, else by order) wins,
    because a corrected label replaces the earlier one.
    """
    latest: dict[tuple[str, str], AnnotationRecord] = {}
    for ann in annotations:
        key = (ann.item_id, ann.annotator)
        old = latest.get(key)
        if old is None or (ann.timestamp or "") >= (old.timestamp or ""):
            latest[key] = ann
    grouped: dict[str, dict[str, Hashable]] = defaultdict(dict)
    for (item, annotator), ann in latest.items():
        grouped[item][annotator] = ann.label
    return dict(grouped)


def from_mapping(item_labels: Mapping[str, Mapping[str, Any]], *, guideline_version: str = "") -> list[AnnotationRecord]:
    """Annotation records from ``item_id -> annotator -> label`` (handy for tests and imports)."""
    return [
        AnnotationRecord(item_id=item, annotator=str(who), label=label, guideline_version=guideline_version)
        for item, labels in item_labels.items()
        for who, label in labels.items()
    ]
