"""Reviewed items into the next training set: ``python -m framework.annotation merge RUN EXPORT...``.

:func:`merge_corrections` reads the pulled Label Studio exports (:func:`framework.annotation.server.pull`
or a UI export), and writes a new training manifest: every training record of the run, plus the
reviewed items with their reviewed label and a ``provenance`` object each
(:mod:`framework.data.provenance`: source, annotators, date, the model's earlier prediction).
On the way it

* runs the agreement gate (:func:`framework.annotation.agreement.overall_agreement`) over the
  items that several annotators labelled, against ``data.gates.consistency.min_kappa`` of the run
  unless told otherwise, and refuses the merge below it;
* adjudicates those items by majority vote and leaves out ties;
* refuses items that would leak into evaluation: the same media path or the same content
  (:func:`framework.data.fingerprints.fingerprint`) as a val/test record;
* relabels an item the training split already holds (same id or media file) instead of adding it;
* copies reviewed media into the manifest's folder (``media/``), so the manifest lives under
  ``data.root`` and keeps working when the batch folder goes;
* records the merge in the data set's card (``merges:`` in ``datacard.yaml``).

A run with ``data.train=<the manifest>`` then shows a "Merged corrections" section in its reports.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Hashable, Sequence

from framework.annotation.adjudication import majority_vote
from framework.annotation.agreement import overall_agreement
from framework.annotation.label_studio import annotations_from_task, load_tasks, media_reference, parse_result, task_item_id
from framework.annotation.records import AnnotationRecord, by_item
from framework.data.provenance import FIELD, provenance
from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError

log = logging.getLogger(__name__)

EVAL_SPLITS = ("val", "test")


@dataclass
class Reviewed:
    """One reviewed item from an export: what was shown, what annotators said, what the model said."""

    item_id: str
    where: str
    media: Path | None
    text: str | None
    annotations: list[AnnotationRecord]
    prediction: Hashable | None
    model_version: str | None


@dataclass
class MergeResult:
    """What :func:`merge_corrections` did.

    Attributes:
        manifest: The new training manifest.
        added: Ids (in the manifest) of reviewed items added to training.
        relabelled: Training record id -> (label before, label after).
        refused: Reviewed item id -> why it was left out.
        agreement: ``(method, value, items)`` over the items with several annotators, or ``None``.
        card: The data card the merge was recorded in.
        entry: The card's entry for this merge.
    """

    manifest: Path
    added: list[str] = field(default_factory=list)
    relabelled: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    agreement: tuple[str, float, int] | None = None
    card: Path | None = None
    entry: dict[str, Any] = field(default_factory=dict)


def reviewed_items(paths: Sequence[Path]) -> list[Reviewed]:
    """The annotated tasks of Label Studio exports, with the model's prediction of each."""
    out = []
    for path in paths:
        for i, task in enumerate(load_tasks(Path(path))):
            item = task_item_id(task, i)
            where = f"{Path(path).name}:task[{i}]"
            anns = annotations_from_task(task, item_id=item, where=where)
            if not anns:
                continue
            data = task.get("data") or {}
            media = next((media_reference(str(data[k])) for k in ("image", "audio", "video") if data.get(k)), None)
            model = next((p for p in task.get("predictions") or []
                          if isinstance(p, dict) and not str(p.get("model_version", "")).startswith("annotator:")), None)
            out.append(Reviewed(item, where, Path(media) if media else None, data.get("text"), anns,
                                parse_result(model.get("result") or []) if model else None,
                                model.get("model_version") if model else None))
    return out


def agreement_gate(items: Sequence[Reviewed], min_kappa: float) -> tuple[tuple[str, float, int] | None, dict[str, Any]]:
    """Agreement over the items several annotators labelled, and the majority label of every item.

    Raises:
        FrameworkError: when the agreement is below ``min_kappa``.
    """
    labels = by_item(a for item in items for a in item.annotations)
    several = {k: v for k, v in labels.items() if len(v) > 1}
    measured = None
    if several:
        method, value = overall_agreement(several)
        measured = (method, float(value), len(several))
        if not value >= min_kappa:
            raise FrameworkError(f"agreement gate: {method} {value:.3f} over {len(several)} items labelled by several "
                                 f"annotators is below {min_kappa:.2f}; adjudicate the disagreements in Label Studio "
                                 f"and pull again, or pass --min-kappa to lower the bar")
    return measured, majority_vote(labels)


def leak_index(data: DataBundle) -> tuple[dict[Path, str], dict[str, str]]:
    """Media path -> id and content fingerprint -> id of every val/test record."""
    from framework.data.fingerprints import fingerprint

    paths, contents = {}, {}
    for split in EVAL_SPLITS:
        for record in data.records(split):
            if record.media is not None:
                paths[Path(record.media).absolute()] = f"{split} item {record.id}"
            contents[fingerprint(record).exact] = f"{split} item {record.id}"
    return paths, contents


def _leak(item: Reviewed, index: tuple[dict[Path, str], dict[str, str]]) -> str | None:
    from framework.data.fingerprints import fingerprint

    paths, contents = index
    if item.media is not None and item.media.absolute() in paths:
        return f"same file as {paths[item.media.absolute()]}"
    probe = Record(id=item.item_id, split="train", source=item.where, media=item.media, text=item.text)
    twin = contents.get(fingerprint(probe).exact)
    return f"same content as {twin}" if twin else None


def _line(record: Record, root: Path) -> dict[str, Any]:
    """One manifest line; audio items are written as NeMo lines (``audio_filepath``, ``text`` = the
    transcript), which the speech readers and the generic JSONL reader both read."""
    from framework.data.probes import AUDIO_EXTENSIONS

    line = {k: v for k, v in record.fields.items() if k not in ("path", "media", "file", "image", "audio", "audio_filepath")}
    line.update({"id": record.id, "label": record.label})
    if record.media is not None:
        media = Path(record.media)
        rel = media.absolute().relative_to(root.absolute()).as_posix()
        if media.suffix.lower() in AUDIO_EXTENSIONS:
            import soundfile

            line.update({"audio_filepath": rel, "text": record.label})
            line.setdefault("duration", round(float(soundfile.info(str(media)).duration), 3))
        else:
            line["path"] = rel
    if record.text is not None and "text" not in line:
        line["text"] = record.text
    return line


MERGEABLE = "class labels (any modality) and audio transcripts"


def _unmergeable(item: Reviewed, label_type: str) -> str | None:
    """Why an item's label cannot become a training label of this data, or ``None``."""
    from framework.data.probes import AUDIO_EXTENSIONS

    if label_type == "class" and isinstance(item.annotations[0].label, str):
        return None
    if label_type == "text" and item.media is not None and item.media.suffix.lower() in AUDIO_EXTENSIONS:
        return None
    return f"only {MERGEABLE} are merged into training data; correct this item in the data set itself"


def merge_corrections(data: DataBundle, exports: Sequence[Path], *, out: Path, min_kappa: float,
                      model_version: str | None = None, now: datetime | None = None,
                      label_type: str = "class") -> MergeResult:
    """Write ``out``: the training split of ``data`` with the reviewed items of ``exports`` folded in.

    Args:
        data: The run's data (its ``train`` split, and ``val``/``test`` for the leak check).
        exports: Pulled Label Studio exports.
        out: The new manifest (JSONL); it must lie under ``data.root``.
        min_kappa: The agreement gate's threshold.
        model_version: Recorded when a task's prediction names none.
        now: The merge's time (default: now, UTC).
        label_type: The run's label type: ``"class"``, or ``"text"`` for transcripts of audio items.
            Other items (captions, ratings, pairwise choices) are refused with the reason.

    Raises:
        FrameworkError: when ``out`` is outside the data root, the agreement gate fails, or no
            reviewed item is left to merge.
    """
    root, out = Path(data.root).absolute(), Path(out).absolute()
    if not out.is_relative_to(root):
        raise FrameworkError(f"--out {out} is outside the run's data.root {root}; write the manifest under it so its "
                             f"paths resolve (default: {root}/corrections/<date>/train.jsonl)")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = reviewed_items(exports)
    if not items:
        raise FrameworkError(f"no annotated task in {', '.join(map(str, exports))}; annotate in Label Studio and pull again")
    measured, consensus = agreement_gate(items, min_kappa)
    result = MergeResult(manifest=out, agreement=measured)
    leaks = leak_index(data)
    train = {r.id: r for r in data.records("train")}
    train_by_path = {Path(r.media).absolute(): r.id for r in train.values() if r.media is not None}
    merged: list[Record] = []
    for item in items:
        verdict = consensus.get(item.item_id)
        reason = (_unmergeable(item, label_type) or
                  ("annotators tie; adjudicate it in Label Studio" if verdict is None or verdict.tie else
                   "its media file is missing" if item.media is not None and not item.media.is_file() else
                   _leak(item, leaks)))
        if reason:
            result.refused[item.item_id] = reason
            continue
        held = train.get(item.item_id)
        if held is None and item.media is not None:
            held = train.get(train_by_path.get(item.media.absolute(), ""))
        prov = provenance(source=item.where, annotators=[a.annotator for a in item.annotations],
                          date=max((a.timestamp or "" for a in item.annotations), default="") or None,
                          model_prediction=item.prediction, model_version=item.model_version or model_version,
                          merged_at=stamp, item_id=item.item_id, previous_label=held.label if held else None)
        if held is not None:
            result.relabelled[held.id] = (held.label, verdict.label)
            train[held.id] = Record(id=held.id, split="train", source=held.source, media=held.media, label=verdict.label,
                                    text=held.text, slices=held.slices, fields={**held.fields, FIELD: prov})
            continue
        media = None
        if item.media is not None:
            media = out.parent / "media" / Path(item.item_id).as_posix().lstrip("/")
            media = media.with_suffix(item.media.suffix)
            media.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.media, media)
        rid = (media.relative_to(root).as_posix() if media is not None else f"{out.relative_to(root).as_posix()}:{item.item_id}")
        merged.append(Record(id=rid, split="train", source=item.where, media=media, label=verdict.label, text=item.text,
                             fields={FIELD: prov}))
        result.added.append(rid)
    if not merged and not result.relabelled:
        raise FrameworkError("every reviewed item was refused: " + "; ".join(f"{k}: {v}" for k, v in result.refused.items()))
    from framework.atomic import atomic_write_text

    lines = [json.dumps(_line(r, root), ensure_ascii=False, default=str) for r in [*train.values(), *merged]]
    atomic_write_text(out, "\n".join(lines) + "\n")
    result.entry = {"date": stamp, "manifest": out.relative_to(root).as_posix(), "model_version": model_version,
                    "from": [str(p) for p in exports], "added": len(result.added), "relabelled": len(result.relabelled),
                    "refused": len(result.refused),
                    "agreement": None if measured is None else {"method": measured[0], "value": round(measured[1], 4),
                                                                 "items": measured[2]}}
    from framework.data.dataset_card import record_merge

    result.card = record_merge(root, result.entry)
    log.info("merge: %d items added, %d relabelled, %d refused -> %s", len(result.added), len(result.relabelled),
             len(result.refused), out)
    return result
