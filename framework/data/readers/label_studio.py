"""Label Studio JSON exports as records (one per task); annotations stay in ``fields``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from framework.annotation.label_studio import (
    MEDIA_KEYS,
    annotations_from_task,
    ground_truth_label,
    load_tasks,
    media_reference,
    task_item_id,
)
from framework.data.readers._common import Collector, ReadOptions
from framework.data.records import Quarantined, Record


def read_label_studio(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a Label Studio export: one record per task, with every annotator's label kept.

    ``Record.fields`` holds the raw task (``data``, ``annotations``...), from which
    :func:`framework.annotation.label_studio.annotations_from_task` builds annotation records;
    ``load_bundle`` collects those into ``DataBundle.annotations``. ``Record.label`` is the
    ground-truth annotation's label when the task has one, else the majority label, or ``None`` on a tie (adjudicate with :mod:`framework.annotation`). Media given
    as URLs or Label Studio uploads are not local: ``Record.media`` is ``None`` for them.
    """
    col = Collector(path, opts)
    for i, task in enumerate(load_tasks(path)):
        data = task.get("data") or {}
        item = task_item_id(task, i)
        anns = annotations_from_task(task, item_id=item, where=col.where(f"task[{i}]"))
        votes = Counter(a.label for a in anns).most_common(2)
        label = ground_truth_label(task)
        if label is None:
            label = votes[0][0] if votes and (len(votes) == 1 or votes[0][1] > votes[1][1]) else None
        media_key = next((k for k in MEDIA_KEYS if isinstance(data.get(k), str)), None)
        media = media_reference(data[media_key]) if media_key else None
        text = data.get("text") if isinstance(data.get("text"), str) else None
        fields = {**data, "annotations": task.get("annotations") or [], "task_id": task.get("id")}
        with col.line(f"task[{i}]"):
            col.add(f"task[{i}]", fields, media=media, label=label, text=text, record_id=item)
    return col.result()
