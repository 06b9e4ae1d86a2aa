"""Where a training item came from when a reviewer put it there: the ``provenance`` field.

``python -m framework.annotation merge`` writes each corrected item into the new training
manifest with a ``provenance`` object (:func:`provenance`); a run reading that manifest keeps it
in :attr:`Record.fields`, and :func:`merged_summary` turns the training split's provenance into
the "Merged corrections" section of the run's reports.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from framework.data.records import Record

FIELD = "provenance"


def provenance(*, source: str, annotators: Iterable[str], date: str | None, model_prediction: Any,
               model_version: str | None, merged_at: str, item_id: str, previous_label: Any = None) -> dict[str, Any]:
    """The ``provenance`` object of one merged item.

    Args:
        source: Where the correction came from (the pulled export and task, ``export.json:task[3]``).
        annotators: Who labelled it.
        date: When the (latest) annotation was made.
        model_prediction: What the model said before the correction (``None`` if unknown).
        model_version: Which model said it (the run's name).
        merged_at: When the merge ran (ISO 8601, UTC).
        item_id: The item's id in the reviewed batch.
        previous_label: The label the training set held before, for an item it already had.
    """
    return {"source": source, "annotators": sorted(annotators), "date": date, "model_prediction": model_prediction,
            "model_version": model_version, "merged_at": merged_at, "item_id": item_id,
            "previous_label": previous_label}


def merged_summary(records: Iterable[Record]) -> dict[str, Any] | None:
    """What the merged items of a training split add up to, or ``None`` when it has none.

    Returns:
        ``{"items", "sources": {source file: items}, "annotators": {who: items},
        "label_changes": {"prediction -> label": items}, "corrected": items whose label differs
        from the model's prediction (or from the label held before), "merged_at": [dates]}``.
    """
    rows = [(r, r.fields[FIELD]) for r in records if isinstance(r.fields.get(FIELD), Mapping)]
    if not rows:
        return None
    sources: Counter[str] = Counter()
    annotators: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    for record, prov in rows:
        sources[str(prov.get("source", "")).rsplit(":task[", 1)[0]] += 1
        annotators.update(map(str, prov.get("annotators") or []))
        before = prov.get("previous_label", None)
        before = prov.get("model_prediction") if before is None else before
        if before is not None and str(before) != str(record.label):
            changes[f"{before} -> {record.label}"] += 1
    return {"items": len(rows), "sources": dict(sources), "annotators": dict(annotators),
            "label_changes": dict(changes.most_common()), "corrected": sum(changes.values()),
            "merged_at": sorted({str(p.get("merged_at")) for _, p in rows})}


def summary_markdown(summary: Mapping[str, Any]) -> list[str]:
    """The "Merged corrections" section (Markdown lines) of :func:`merged_summary`'s result."""
    out = ["## Merged corrections", "",
           f"{summary['items']} training items came from review ({summary['corrected']} with a label that differs "
           f"from the model's prediction or the earlier label), merged {', '.join(summary['merged_at'])}.", "",
           "| source | items |", "|---|---|"]
    out += [f"| `{s}` | {n} |" for s, n in summary["sources"].items()]
    if summary["label_changes"]:
        out += ["", "| label change | items |", "|---|---|"]
        out += [f"| {c} | {n} |" for c, n in summary["label_changes"].items()]
    out += ["", "Annotators: " + ", ".join(f"{a} ({n})" for a, n in summary["annotators"].items()), ""]
    return out
