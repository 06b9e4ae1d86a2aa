"""The annotation report of an export alone: agreement, gold accuracy, adjudication, review queue.

Agreement does not need the media, so a Label Studio export (or a JSONL of annotations) is enough::

    python -m framework.annotation report export.json [--gold gold.jsonl] [--gold-field FIELD] [--out DIR]

prints the report and writes, in ``DIR`` (default ``<export name>_report/``): ``report.md`` (what
was printed), ``report.json`` (every figure), ``adjudication.jsonl`` (majority vote and
Dawid-Skene per item) and ``review_tasks.json`` (a Label Studio import of the items to look at again).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

from framework.annotation.adjudication import dawid_skene, majority_vote
from framework.annotation.agreement import agreement_report, outlier_annotators
from framework.annotation.records import AnnotationRecord, by_item
from framework.wording import plural

_NAMES = {"cohen": "Cohen's kappa", "fleiss": "Fleiss' kappa", "krippendorff": "Krippendorff's alpha", "none": "agreement"}


@dataclass
class AnnotationSummary:
    """Every figure of an annotation report.

    Attributes:
        annotations: Number of annotation records.
        items: Items with at least one label.
        annotators: Distinct annotators.
        agreement: Method, value, items, per-class, per-annotator and pairwise figures.
        outliers: Annotator -> why they are flagged (far below the others).
        gold_items: Number of items with a known answer.
        gold_accuracy: Annotator -> correct/total/accuracy on the gold items.
        adjudication: Item -> majority label, its share, tie flag, Dawid-Skene label and posterior.
        review: Item -> reasons it should be looked at again.
    """

    annotations: int
    items: int
    annotators: int
    agreement: dict[str, Any]
    outliers: dict[str, str] = field(default_factory=dict)
    gold_items: int = 0
    gold_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    adjudication: dict[str, dict[str, Any]] = field(default_factory=dict)
    review: dict[str, list[str]] = field(default_factory=dict)


def summarize(annotations: Sequence[AnnotationRecord], gold: Mapping[str, Hashable] | None = None, *,
              outlier_margin: float = 0.25) -> AnnotationSummary:
    """Agreement, gold accuracy, adjudication and the review queue of ``annotations``."""
    from framework.annotation.review_tasks import items_needing_review
    from framework.data.gates.accuracy import gold_accuracy

    labels = by_item(annotations)
    gold = dict(gold or {})
    report = agreement_report(labels)
    majority = majority_vote(labels)
    ds = dawid_skene(labels).consensus if labels else {}
    adjudication = {item: {"majority": c.label, "share": c.confidence, "tie": c.tie, "votes": c.votes,
                           "dawid_skene": ds[item].label if item in ds else None,
                           "posterior": ds[item].confidence if item in ds else None}
                    for item, c in majority.items()}
    return AnnotationSummary(
        annotations=len(annotations), items=len(labels), annotators=len({a.annotator for a in annotations}),
        agreement=asdict(report), outliers=outlier_annotators(report.per_annotator, outlier_margin),
        gold_items=len(gold), gold_accuracy=gold_accuracy(labels, gold), adjudication=adjudication,
        review=items_needing_review(annotations, consensus=majority, gold=gold),
    )


def _value(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def render(summary: AnnotationSummary, source: str) -> str:
    """The report as Markdown (also what the command prints)."""
    from framework.data.audit_card import agreement_tables, table

    ag = summary.agreement
    lines = [f"# Annotation report: {source}", "",
             f"{plural(summary.annotations, 'annotation')} on {plural(summary.items, 'item')} by {plural(summary.annotators, 'annotator')}; "
             f"{plural(ag['items'], 'item')} {'has' if ag['items'] == 1 else 'have'} 2+ labels.", "",
             f"Agreement: {_NAMES.get(ag['method'], ag['method'])} {_value(ag['value'])} over {plural(ag['items'], 'item')} "
             f"and {plural(ag['annotators'], 'annotator')}.", ""]
    lines += agreement_tables({**ag, "outliers": sorted(summary.outliers)})
    lines += [f"Flagged: {why}." for why in summary.outliers.values()] + ([""] if summary.outliers else [])
    lines += ["## Gold", ""]
    if not summary.gold_items:
        lines += ["**No gold items**: annotator accuracy was not checked. Pass --gold gold.jsonl (lines of "
                  "{\"id\", \"label\"}), mark ground-truth annotations in Label Studio, or name a task field "
                  "with --gold-field.", ""]
    elif not summary.gold_accuracy:
        lines += [f"{summary.gold_items} gold items, none of them annotated.", ""]
    else:
        lines += [f"{summary.gold_items} gold items.", ""]
        lines += table(["annotator", "correct", "total", "accuracy"],
                       ([a, int(m["correct"]), int(m["total"]), _value(m["accuracy"])]
                        for a, m in summary.gold_accuracy.items())) + [""]
    ties = sum(1 for v in summary.adjudication.values() if v["tie"])
    differ = sum(1 for v in summary.adjudication.values() if v["dawid_skene"] != v["majority"])
    lines += ["## Adjudication", "", f"{plural(len(summary.adjudication), 'item')}: {ties} majority ties; Dawid-Skene "
              f"differs from the majority on {differ}.", "", "## Review queue", ""]
    reasons: dict[str, int] = {}
    for why in summary.review.values():
        for r in why:
            reasons[r] = reasons.get(r, 0) + 1
    lines += [f"{plural(len(summary.review), 'item')} to look at again" + (
        ": " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) if reasons else "") + ".", ""]
    return "\n".join(lines)


def load_export(path: Path, *, gold_field: str | None = None) -> tuple[list[AnnotationRecord], dict[str, Hashable],
                                                                      dict[str, dict[str, Any]]]:
    """Annotations, gold answers (ground-truth annotations, ``gold_field``) and task data of an
    export: a Label Studio JSON export, or a JSONL of ``{"item_id", "annotator", "label"}``."""
    from framework.annotation.label_studio import gold_from_tasks, load_tasks, task_item_id
    from framework.data.loading import read_annotations

    path = Path(path)
    if path.suffix.lower() != ".json":
        return read_annotations(path), {}, {}
    tasks = load_tasks(path)
    data = {task_item_id(t, i): dict(t.get("data") or {}) for i, t in enumerate(tasks)}
    return read_annotations(path), gold_from_tasks(tasks, gold_field), data


def write_report(export: Path, out_dir: Path, *, gold_path: Path | None = None, gold_field: str | None = None,
                 outlier_margin: float = 0.25) -> tuple[str, list[Path]]:
    """Build the report of ``export`` and write its files into ``out_dir``; returns the text and the files."""
    from framework.annotation.review_tasks import export_review_tasks
    from framework.atomic import atomic_write_text
    from framework.data.audit_card import jsonable
    from framework.data.loading import read_gold

    annotations, gold, item_data = load_export(export, gold_field=gold_field)
    if gold_path is not None:
        gold.update(read_gold(gold_path))
    summary = summarize(annotations, gold, outlier_margin=outlier_margin)
    text = render(summary, str(export))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps(jsonable({"item_id": item, **verdict}), ensure_ascii=False) + "\n"
                   for item, verdict in summary.adjudication.items())
    written = [atomic_write_text(out_dir / "report.md", text),
               atomic_write_text(out_dir / "report.json",
                                 json.dumps(jsonable(asdict(summary)), indent=2, ensure_ascii=False)),
               atomic_write_text(out_dir / "adjudication.jsonl", rows)]
    if summary.review:
        consensus = majority_vote(by_item(annotations))
        written.append(export_review_tasks([], annotations, summary.review, out_dir / "review_tasks.json",
                                           consensus=consensus, item_data=item_data))
    return text, written
