"""NeMo-style audio manifests: ``audio_filepath``, ``duration``, ``text`` per line."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from framework.data.errors import DataError
from framework.data.readers._common import Collector, ReadOptions, get_field
from framework.data.records import Quarantined, Record


def read_nemo_audio(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a NeMo manifest line by line.

    Required: ``audio_filepath`` (relative to the manifest or ``data.root``), ``duration``
    (seconds), ``text`` (the transcript; an empty one is kept and reported by the audit).
    Optional: ``language``, ``offset`` (seconds into the file), ``id``. The transcript is both
    ``Record.label`` and ``Record.text``. Several lines may cut segments out of one long file
    with ``offset``/``duration``; without an explicit ``id`` such a segment's id is
    ``<audio path>@<offset>+<duration>``, so segments of one file never clash.
    """
    col = Collector(path, opts)
    for line, obj in col.jsonl():
        with col.line(line):
            _add_nemo_line(col, line, obj)
    return col.result()


def _add_nemo_line(col: Collector, line: int, obj: dict[str, Any]) -> None:
    where = col.where(line)
    media = get_field(obj, "audio_filepath", str, where)
    duration = get_field(obj, "duration", (int, float), where)
    text = get_field(obj, "text", str, where)
    get_field(obj, "language", str, where, required=False)
    offset = get_field(obj, "offset", (int, float), where, required=False)
    if duration < 0 or (offset is not None and offset < 0):
        raise DataError(where, f"negative duration/offset ({duration}, {offset})", "Recompute them from the audio.")
    record_id = obj.get("id")
    if record_id is None and offset is not None:
        record_id = f"{PurePosixPath(media).as_posix()}@{offset:g}+{duration:g}"
    col.add(line, obj, media=media, label=text, text=text, record_id=record_id)
