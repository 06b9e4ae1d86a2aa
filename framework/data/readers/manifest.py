"""Generic JSONL and CSV manifests: one item per line, a media path and/or a text, a label."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator, Mapping

from framework.data.errors import DataError
from framework.data.readers._common import Collector, ReadOptions
from framework.data.records import Quarantined, Record

# Keys accepted for the media path, in order; the first present wins.
MEDIA_KEYS = ("path", "media", "file", "image", "audio", "audio_filepath")
_SCALAR = (str, int, float)


def _media_key(obj: Mapping[str, Any]) -> str | None:
    return next((k for k in MEDIA_KEYS if obj.get(k) not in (None, "")), None)


def _add_line(col: Collector, line: int, obj: Mapping[str, Any]) -> None:
    where = col.where(line)
    key = _media_key(obj)
    text = obj.get("text")
    if key is None and text is None:
        raise DataError(where, f"line has neither a media path ({'/'.join(MEDIA_KEYS)}) nor 'text'",
                        "Add a media path or a text field, or choose another data.format.")
    if text is not None and not isinstance(text, str):
        raise DataError(where, f"field 'text' must be str, got {type(text).__name__}", "Fix the value's type.")
    label = obj.get("label")
    if label is not None and not isinstance(label, _SCALAR + (list,)):
        raise DataError(where, f"field 'label' must be a string, number or list, got {type(label).__name__}",
                        "Write the label as a class name or number.")
    if key is not None and not isinstance(obj[key], str):
        raise DataError(where, f"field {key!r} must be a path string, got {type(obj[key]).__name__}", "Fix the path.")
    col.add(line, obj, media=obj[key] if key else None, label=label, text=text, record_id=obj.get("id"))


def read_jsonl(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a JSONL manifest: ``{"path": "img/1.png", "label": "cat", "id": ...}`` per line.

    The media key may be any of ``path``, ``media``, ``file``, ``image``, ``audio`` or
    ``audio_filepath``; text-only lines carry ``text``. Other fields are kept in ``Record.fields``.
    """
    col = Collector(path, opts)
    for line, obj in col.jsonl():
        with col.line(line):
            _add_line(col, line, obj)
    return col.result()


def read_csv(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a CSV manifest with a header row; columns as in :func:`read_jsonl`.

    Empty cells are read as absent, except an empty ``label`` cell, which is kept as ``""`` so
    that the audit reports it as an empty label rather than treating the item as unlabeled.
    """
    col = Collector(path, opts)
    reader = csv.DictReader(csv_lines(col))
    if not reader.fieldnames:
        col.errors.check()
        raise DataError(f"{path}:1", "CSV has no header row", "Add a header such as 'path,label'.")
    for row in reader:
        with col.line(reader.line_num):
            if None in row:  # more cells than header columns
                raise DataError(col.where(reader.line_num), f"row has {len(reader.fieldnames) + len(row[None])} cells "
                                f"but the header has {len(reader.fieldnames)}", "Quote cells that contain commas.")
            clean = {k: (v if v != "" else None) for k, v in row.items()}
            if clean.get("label") is None and row.get("label") == "":
                clean["label"] = ""
            _add_line(col, reader.line_num, clean)
    return col.result()


def csv_lines(col: Collector) -> Iterator[str]:
    """The file's lines for :class:`csv.reader`, decoded as UTF-8; bad bytes are recorded in ``col``."""
    return (text + "\n" for _, text in col.text_lines())
