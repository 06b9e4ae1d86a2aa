"""Long recordings as utterances: SRT/VTT cues grouped into segments of at most the model's window.

A long file with a subtitle transcript (a manifest line's ``subtitles`` field, or an ``.srt`` /
``.vtt`` file beside the audio with the same name, used when the line's ``text`` is empty)
becomes several records, each a run of consecutive cues that fits the window (30 s for released
models), cut only on cue boundaries. A single cue longer than the window becomes a record of its
own and is reported by the audit's duration check (it would be trimmed).

Cue files are parsed here (a timing line ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, or with ``.`` for
VTT, followed by text lines); styling tags such as ``<i>`` and VTT cue settings are dropped.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from framework.data.errors import DataError
from framework.data.records import Record

SUBTITLE_SUFFIXES = (".srt", ".vtt")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: ``start`` and ``end`` in seconds, and its text."""

    start: float
    end: float
    text: str


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def parse_cues(path: Path) -> list[Cue]:
    """The cues of an SRT or WebVTT file, in time order.

    Raises:
        DataError: naming ``file:line`` for a cue that ends before it starts, or a file without cues.
    """
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    cues: list[Cue] = []
    i = 0
    while i < len(lines):
        match = _TIMING.match(lines[i])
        if not match:
            i += 1
            continue
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        if end < start:
            raise DataError(f"{path}:{i + 1}", f"cue ends ({end:.3f} s) before it starts ({start:.3f} s)",
                            "Fix the cue's timing line.")
        text_lines = []
        i += 1
        while i < len(lines) and lines[i].strip():
            text_lines.append(_TAG.sub("", lines[i]).strip())
            i += 1
        text = " ".join(t for t in text_lines if t)
        if text:
            cues.append(Cue(start, end, text))
    if not cues:
        raise DataError(str(path), "no subtitle cues found", "Give an SRT or WebVTT file with timed cues.")
    return sorted(cues, key=lambda c: c.start)


def group_cues(cues: list[Cue], max_seconds: float) -> list[Cue]:
    """Consecutive cues joined into segments no longer than ``max_seconds`` (cut on cue boundaries).

    A segment runs from its first cue's start to its last cue's end; a cue longer than
    ``max_seconds`` on its own is a segment of its own.
    """
    segments: list[Cue] = []
    current: list[Cue] = []
    for cue in cues:
        if current and cue.end - current[0].start > max_seconds:
            segments.append(Cue(current[0].start, current[-1].end, " ".join(c.text for c in current)))
            current = []
        current.append(cue)
    if current:
        segments.append(Cue(current[0].start, current[-1].end, " ".join(c.text for c in current)))
    return segments


def subtitle_file(record: Record, root: Path) -> Path | None:
    """The record's subtitle file: its ``subtitles`` field (relative to ``root``), or a sidecar
    ``.srt``/``.vtt`` beside the audio when the transcript is empty; ``None`` otherwise."""
    named = record.fields.get("subtitles")
    if named:
        path = Path(str(named))
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DataError(record.source, f"subtitles file {path} does not exist", "Fix the 'subtitles' path.")
        return path
    if record.media is None or (record.label and str(record.label).strip()):
        return None
    for suffix in SUBTITLE_SUFFIXES:
        sidecar = Path(record.media).with_suffix(suffix)
        if sidecar.is_file():
            return sidecar
    return None


def split_record(record: Record, cues: list[Cue], max_seconds: float) -> list[Record]:
    """One record per segment of ``cues``, ids ``<id>#000``..., with ``offset``/``duration`` fields."""
    out = []
    for k, seg in enumerate(group_cues(cues, max_seconds)):
        fields = {**record.fields, "offset": seg.start, "duration": round(seg.end - seg.start, 3), "text": seg.text}
        out.append(dataclasses.replace(record, id=f"{record.id}#{k:03d}", label=seg.text, text=seg.text,
                                       fields=fields))
    return out
