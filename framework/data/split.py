"""Train/val/test manifests from one source: stratified by label, grouped so no group crosses splits.

``python -m framework.data split SOURCE OUT --val 0.1 --test 0.1 --seed 0 [--group-by speaker]
[--stratify label]`` reads ``SOURCE`` with the same readers as a run (any format ``auto`` knows: a
manifest, a class folder, a chat file, a Hugging Face dataset), and writes ``OUT/train.jsonl``,
``OUT/val.jsonl``, ``OUT/test.jsonl`` (each line the item's own fields, media paths relative
to ``OUT``), ``OUT/split.json`` (what was done, counts per split and label) and ``OUT/datacard.yaml``
(the source's card carried over, with the split in its notes). Put ``OUT`` inside the data root
(media must stay under it) and train with ``data.train=OUT/train.jsonl data.val=OUT/val.jsonl
data.test=OUT/test.jsonl``; for text-only data ``data.root=OUT`` works as well.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from framework.data.errors import DataError
from framework.data.records import Record

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class SplitResult:
    """What :func:`split_records` decided.

    Attributes:
        splits: Records per split name (``train``, ``val``, ``test``).
        groups: Number of groups per split (each record its own group without ``group_by``).
    """

    splits: dict[str, list[Record]]
    groups: dict[str, int] = field(default_factory=dict)


def _value(record: Record, key: str | None) -> str | None:
    if not key:
        return None
    if key == "label":
        return None if record.label is None else str(record.label)
    value = record.slices.get(key, record.fields.get(key))
    return None if value in (None, "") else str(value)


def split_records(records: Sequence[Record], *, val: float, test: float, seed: int = 0,
                  group_by: str | None = None, stratify: str | None = "label") -> SplitResult:
    """Assign whole groups to train/val/test, per stratum, aiming at the ``val``/``test`` fractions.

    Groups are the records sharing ``group_by`` (a record without it is a group alone); a group's
    stratum is its most common ``stratify`` value. Within each stratum the groups are shuffled
    with ``seed`` and each goes to the split furthest below its target, so every label appears
    in every split when it has enough groups. The result is a pure function of the inputs.

    Raises:
        DataError: for fractions outside ``[0, 1)`` or summing to 1 or more.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError("split", f"--val {val} --test {test} must each be in [0, 1) and sum to less than 1",
                        "Use e.g. --val 0.1 --test 0.1.")
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[_value(record, group_by) or f"\0{record.id}"].append(record)
    strata: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        votes = Counter(_value(r, stratify) or "" for r in groups[key])
        strata[min(votes, key=lambda v: (-votes[v], v))].append(key)
    target = {"train": 1 - val - test, "val": val, "test": test}
    out: dict[str, list[Record]] = {name: [] for name in SPLIT_NAMES}
    n_groups: Counter[str] = Counter()
    rng = random.Random(seed)
    for stratum in sorted(strata):
        keys = strata[stratum]
        rng.shuffle(keys)
        size = sum(len(groups[k]) for k in keys)
        taken = Counter()
        for key in keys:
            # The split whose share of this stratum is furthest below its target takes the group.
            name = max((n for n in SPLIT_NAMES if target[n] > 0),
                       key=lambda n: (target[n] * size - taken[n], -SPLIT_NAMES.index(n)))
            taken[name] += len(groups[key])
            out[name] += groups[key]
            n_groups[name] += 1
    return SplitResult(out, dict(n_groups))


def _line(record: Record, out: Path) -> dict[str, Any]:
    line = {k: v for k, v in record.fields.items() if _jsonable(v)}
    line.setdefault("id", record.id)
    if record.media is not None:
        media = os.path.relpath(record.media.absolute(), out.absolute())  # manifests resolve media from their folder
        line["path"] = media
        for key in ("media", "file", "image", "audio", "audio_filepath"):
            if key in line and isinstance(line[key], str):
                line[key] = media
    if record.label is not None and "label" not in line and "messages" not in line and "audio_filepath" not in line:
        line["label"] = record.label
    return line


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def write_split(result: SplitResult, out: Path, *, source: str, settings: dict[str, Any],
                card: dict[str, Any] | None = None) -> list[Path]:
    """Write the manifests, ``split.json`` and ``datacard.yaml`` into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, records in result.splits.items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(_line(r, out), ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        written.append(path)
    counts = {n: len(r) for n, r in result.splits.items()}
    labels = {n: dict(sorted(Counter(str(r.label) for r in rs if r.label is not None and len(str(r.label)) < 80).items()))
              for n, rs in result.splits.items()}
    summary = {"source": source, **settings, "counts": counts, "groups": result.groups, "labels": labels}
    (out / "split.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    note = (f"split from {source} by python -m framework.data split (seed {settings['seed']}, val {settings['val']}, "
            f"test {settings['test']}, group_by {settings['group_by']}, stratify {settings['stratify']}): "
            + ", ".join(f"{n} {c}" for n, c in counts.items()))
    entry = dict(card or {})
    entry.setdefault("sources", [source])
    entry["notes"] = (str(entry["notes"]) + "\n" if entry.get("notes") else "") + note
    (out / "datacard.yaml").write_text(yaml.safe_dump(entry, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return written + [out / "split.json", out / "datacard.yaml"]


__all__ = ["SplitResult", "split_records", "write_split"]
