"""Label Studio JSON: read exports with several annotators, write tasks for review or correction.

Exports are lists of tasks; each task has ``data`` (what was shown: ``image``, ``audio``,
``text``...), ``annotations`` (one per annotator: ``completed_by``, ``result``, ``created_at``,
``lead_time``) and maybe ``predictions``. Media written by this module use Label Studio's local
file form ``/data/local-files/?d=<path relative to data.root>``, which the reader maps back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlparse

from framework.annotation.records import AnnotationRecord
from framework.data.errors import DataError
from framework.data.records import Record

MEDIA_KEYS = ("image", "audio", "video")
LOCAL_FILES_PREFIX = "/data/local-files/?d="

# Result value field per Label Studio control type, in the order they are tried.
_VALUE_KEYS = {"choices": "choices", "labels": "labels", "textarea": "text", "rating": "rating",
               "number": "number", "pairwise": "selected", "taxonomy": "taxonomy"}


def parse_result(results: Sequence[Mapping[str, Any]]) -> Hashable | None:
    """The label in an annotation's ``result`` list: the first control with a known type.

    One choice becomes its string, several become a sorted tuple; a textarea becomes its text
    (lines joined by newlines); rating/number stay numbers. Unknown types give ``None``.
    """
    for res in results:
        key = _VALUE_KEYS.get(str(res.get("type", "")))
        value = (res.get("value") or {}).get(key) if key else None
        if value is None:
            continue
        if key == "text":
            return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
        if isinstance(value, list):
            flat = [v if not isinstance(v, list) else "/".join(map(str, v)) for v in value]
            return flat[0] if len(flat) == 1 else tuple(sorted(map(str, flat)))
        return value
    return None


def _annotator_id(completed_by: Any) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("id"))
    return str(completed_by)


def task_item_id(task: Mapping[str, Any], index: int) -> str:
    """The record id of a task: ``data.item_id``, ``data.id``, the task ``id``, else its index."""
    data = task.get("data") or {}
    for value in (data.get("item_id"), data.get("id"), task.get("id")):
        if value is not None:
            return str(value)
    return f"task[{index}]"


def annotations_from_task(
    task: Mapping[str, Any], *, item_id: str, where: str, guideline_version: str = ""
) -> list[AnnotationRecord]:
    """Annotation records of one exported task; cancelled and empty annotations are skipped, and so
    are ground-truth annotations (``ground_truth: true``): they are the task's known answer
    (:func:`ground_truth_label`), against which annotators are scored, not one more vote."""
    out = []
    for ann in task.get("annotations") or []:
        if ann.get("was_cancelled") or ann.get("ground_truth"):
            continue
        label = parse_result(ann.get("result") or [])
        if label is None:
            continue
        lead = ann.get("lead_time")
        out.append(
            AnnotationRecord(
                item_id=item_id,
                annotator=_annotator_id(ann.get("completed_by")),
                label=label,
                timestamp=ann.get("updated_at") or ann.get("created_at"),
                guideline_version=str((ann.get("meta") or {}).get("guideline_version", guideline_version)),
                confidence=None,
                lead_time=float(lead) if isinstance(lead, (int, float)) else None,
                source=where,
            )
        )
    return out


def ground_truth_label(task: Mapping[str, Any]) -> Hashable | None:
    """The label of the task's ground-truth annotation (``ground_truth: true``), if it has one."""
    for ann in task.get("annotations") or []:
        if ann.get("ground_truth") and not ann.get("was_cancelled"):
            label = parse_result(ann.get("result") or [])
            if label is not None:
                return label
    return None


def task_gold(task: Mapping[str, Any], gold_field: str | None = None) -> Hashable | None:
    """The known answer of a task: its ground-truth annotation, else ``data[gold_field]``."""
    label = ground_truth_label(task)
    if label is None and gold_field:
        value = (task.get("data") or {}).get(gold_field)
        label = tuple(value) if isinstance(value, list) else value
    return label


def gold_from_tasks(tasks: Sequence[Mapping[str, Any]], gold_field: str | None = None) -> dict[str, Hashable]:
    """Item id -> known answer for every task that has one (see :func:`task_gold`)."""
    gold = {}
    for i, task in enumerate(tasks):
        label = task_gold(task, gold_field)
        if label is not None and label != "":
            gold[task_item_id(task, i)] = label
    return gold


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """The task list of a Label Studio JSON export (a list, or ``{"tasks": [...]}``).

    Raises:
        DataError: when the file is not JSON or not a list of task objects.
    """
    from framework.data.textio import read_text

    path = Path(path)
    try:
        payload = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg})", "Re-export the project as JSON.") from exc
    tasks = payload.get("tasks") if isinstance(payload, dict) else payload
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise DataError(str(path), "expected a JSON list of task objects", "Export from Label Studio as JSON (not JSON_MIN).")
    return tasks


def import_label_studio(path: Path, *, guideline_version: str = "") -> list[AnnotationRecord]:
    """Every annotation of a Label Studio export, keeping who labelled what and when."""
    out: list[AnnotationRecord] = []
    for i, task in enumerate(load_tasks(path)):
        item = task_item_id(task, i)
        out += annotations_from_task(task, item_id=item, where=f"{path}:task[{i}]", guideline_version=guideline_version)
    return out


def media_reference(value: str) -> str | None:
    """The local path inside a task's media value, or ``None`` for URLs and uploaded files."""
    if value.startswith(LOCAL_FILES_PREFIX) or value.startswith("/data/local-files/"):
        return parse_qs(urlparse(value).query).get("d", [None])[0]
    if value.startswith(("http://", "https://", "s3://", "gs://", "/data/upload/")):
        return None
    return value


# --- writing tasks ---------------------------------------------------------------------------


def _control(label_type: str) -> tuple[str, str, str]:
    """(control type, from_name, value key) used to write a label of ``label_type``."""
    if label_type == "text":
        return "textarea", "transcription", "text"
    return "choices", "label", "choices"


def result_for(label: Any, *, label_type: str, to_name: str) -> list[dict[str, Any]]:
    """A Label Studio ``result`` list holding ``label`` (the inverse of :func:`parse_result`)."""
    kind, from_name, key = _control(label_type)
    values = list(label) if isinstance(label, tuple) else [label]
    return [{"from_name": from_name, "to_name": to_name, "type": kind, "value": {key: [str(v) for v in values]}}]


def task_data(record: Record, root: Path | None) -> tuple[dict[str, Any], str]:
    """The ``data`` of a task showing ``record``, and the key the label controls point at."""
    data: dict[str, Any] = {"item_id": record.id, "split": record.split, "source": record.source}
    to_name = "text"
    if record.text is not None:
        data["text"] = record.text
    if record.media is not None:
        media = Path(record.media)
        rel = media.relative_to(root).as_posix() if root and media.is_relative_to(root) else media.as_posix()
        to_name = "audio" if media.suffix.lower() in {".wav", ".flac", ".mp3", ".ogg", ".opus"} else "image"
        data[to_name] = LOCAL_FILES_PREFIX + rel
    data.update({f"slice_{k}": v for k, v in record.slices.items()})
    return data, to_name


def write_tasks(tasks: list[dict[str, Any]], path: Path) -> Path:
    """Write a task list as Label Studio import JSON; parent folders are created."""
    path = Path(path)
    from framework.atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(tasks, indent=1, ensure_ascii=False, default=str))


def annotation_entries(anns: Iterable[AnnotationRecord], *, label_type: str, to_name: str) -> list[dict[str, Any]]:
    """Existing annotations as Label Studio annotation objects, so reviewers see who said what."""
    return [
        {
            "completed_by": a.annotator,
            "result": result_for(a.label, label_type=label_type, to_name=to_name),
            "created_at": a.timestamp,
            "lead_time": a.lead_time,
            "meta": {"guideline_version": a.guideline_version},
        }
        for a in anns
    ]
