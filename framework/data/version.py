"""What a run trained on, as a fingerprint a checkpoint keeps, so a resume can tell when the data changed.

A split's fingerprint hashes every record as read (id, label, text, raw fields) and the size and
modification time of its media file (of its shard, for a member of a tar shard): an edited manifest line, a replaced image or a rewritten WAV
changes it, while re-reading unchanged files does not. Stat calls only, no media decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from framework.data.records import DataBundle, Record
from framework.data.shards import split_member

#: The splits whose change makes a resume mix two data sets: what is trained on, and what
#: validation (early stopping, the best checkpoint) is measured on.
TRAINING_SPLITS = ("train", "val")


def split_fingerprint(records: Iterable[Record]) -> str:
    """``"<n> records, sha256 <hex>"`` for the records in id order (the order readers give is kept
    out of it, so only content counts)."""
    digest, count = hashlib.sha256(), 0
    for record in sorted(records, key=lambda r: r.id):
        count += 1
        media = ""
        if record.media is not None:
            try:
                stat = _media_stat(record.media)
                media = f"{record.media}:{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                media = f"{record.media}:missing"
        row = [record.id, repr(record.label), record.text, json.dumps(record.fields, sort_keys=True, default=str),
               media]
        digest.update(json.dumps(row).encode("utf-8"))
        digest.update(b"\n")
    return f"{count} records, sha256 {digest.hexdigest()}"


def _media_stat(path: Path) -> os.stat_result:
    """The media file's stat; for a member of a tar shard, the shard's (rewriting a shard changes it)."""
    try:
        return path.stat()
    except OSError:
        member = split_member(path)
        if member is None:
            raise
        return member[0].stat()


def data_fingerprint(data: DataBundle, splits: Iterable[str] = TRAINING_SPLITS) -> dict[str, str]:
    """One :func:`split_fingerprint` per split of ``splits`` that the bundle has."""
    return {name: split_fingerprint(data.splits[name]) for name in splits if name in data.splits}
