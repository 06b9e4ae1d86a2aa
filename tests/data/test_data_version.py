"""The data fingerprint a checkpoint keeps: content changes it, re-reading and reordering do not."""

from __future__ import annotations

import os
from pathlib import Path

from framework.data.records import DataBundle, Record
from framework.data.version import data_fingerprint, split_fingerprint


def _records(root: Path) -> list[Record]:
    out = []
    for i in range(3):
        media = root / f"{i}.wav"
        if not media.exists():
            media.write_bytes(b"RIFF" + bytes([i]) * 40)
        out.append(Record(id=f"r{i}", split="train", source=f"train.jsonl:{i + 1}", media=media, label=f"word {i}"))
    return out


def test_the_same_data_read_twice_in_any_order_has_one_fingerprint(tmp_path: Path) -> None:
    records = _records(tmp_path)
    assert split_fingerprint(records) == split_fingerprint(list(reversed(_records(tmp_path))))
    assert split_fingerprint(records).startswith("3 records, sha256 ")


def test_an_edited_label_or_a_rewritten_media_file_changes_it(tmp_path: Path) -> None:
    records = _records(tmp_path)
    before = split_fingerprint(records)
    edited = [*records[:2], Record(**{**records[2].__dict__, "label": "another word"})]
    assert split_fingerprint(edited) != before
    media = records[0].media
    assert media is not None
    stat = media.stat()
    media.write_bytes(b"RIFF" + b"\x07" * 40)  # same size, new content
    os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert split_fingerprint(records) != before


def test_a_missing_record_changes_it_and_only_training_splits_count(tmp_path: Path) -> None:
    records = _records(tmp_path)
    bundle = DataBundle(splits={"train": records, "test": records[:1]}, root=tmp_path)
    full = data_fingerprint(bundle)
    assert set(full) == {"train"}
    bundle.splits["train"] = records[:2]
    assert data_fingerprint(bundle)["train"].startswith("2 records") and data_fingerprint(bundle) != full
