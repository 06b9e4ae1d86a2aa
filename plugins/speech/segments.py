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
from dataclasses import dataclass, field
from pathlib import Path

from framework.data.errors import DataError
from framework import resolve_media
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
    line: int = field(default=0, compare=False)  #: its timing line in the file (1-based), for messages


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def parse_cues(path: Path) -> list[Cue]:
    """The cues of an SRT or WebVTT file, in time order.

    Raises:
        DataError: naming ``file:line`` for a cue that ends before it starts, or a file without cues.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(str(path), f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                        "Re-save the subtitle file as UTF-8 (e.g. iconv -f cp1252 -t utf-8).") from None
    cues: list[Cue] = []
    i = 0
    while i < len(lines):
        match = _TIMING.match(lines[i])
        if not match:
            i += 1
            continue
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        line = i + 1
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
            cues.append(Cue(start, end, text, line))
    if not cues:
        raise DataError(str(path), "no subtitle cues found", "Give an SRT or WebVTT file with timed cues.")
    return sorted(cues, key=lambda c: c.start)


def vet_cues(cues: list[Cue], path: Path, audio_seconds: float | None = None) -> tuple[list[Cue], list[str]]:
    """The cues worth keeping, and one ``file:line: problem`` per cue that is not.

    Called on every subtitle file before its cues become segments. Zero-length cues and cues that
    start at or after the end of the audio (``audio_seconds``, when known) are dropped; cues that
    overlap the one before, or run past the end of the audio, are kept and reported.
    """
    kept: list[Cue] = []
    problems: list[str] = []
    for cue in cues:
        where = f"{path}:{cue.line}"
        if cue.end <= cue.start:
            problems.append(f"{where}: zero-length cue at {cue.start:.3f} s (dropped)")
            continue
        if audio_seconds is not None and cue.start >= audio_seconds:
            problems.append(f"{where}: cue starts at {cue.start:.3f} s, after the audio ends at {audio_seconds:.3f} s "
                            "(dropped)")
            continue
        if audio_seconds is not None and cue.end > audio_seconds + 0.5:
            problems.append(f"{where}: cue ends at {cue.end:.3f} s, past the end of the audio ({audio_seconds:.3f} s)")
        if kept and cue.start < kept[-1].end:
            problems.append(f"{where}: cue overlaps the one before ({cue.start:.3f} s < {kept[-1].end:.3f} s)")
        kept.append(cue)
    return kept, problems


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


def subtitle_file(record: Record, root: Path, allow_outside_root: bool = False) -> Path | None:
    """The record's subtitle file: its ``subtitles`` field (relative to ``root``), or a sidecar
    ``.srt``/``.vtt`` beside the audio when the transcript is empty; ``None`` otherwise.

    Raises:
        DataError: when the file does not exist, or lies outside ``root`` (by ``..``, an absolute
            path or a symbolic link) and ``allow_outside_root`` is off, as for media paths.
    """
    named = record.fields.get("subtitles")
    if named:
        path = resolve_media(str(named), root=root, base=root, where=record.source,
                             allow_outside_root=allow_outside_root)
        if not path.is_file():
            raise DataError(record.source, f"subtitles file {path} does not exist", "Fix the 'subtitles' path.")
        return path
    if record.media is None or (record.label and str(record.label).strip()):
        return None
    for suffix in SUBTITLE_SUFFIXES:
        sidecar = Path(record.media).with_suffix(suffix)
        if sidecar.is_file():
            return resolve_media(str(sidecar), root=root, base=root, where=record.source,
                                 allow_outside_root=allow_outside_root)
    return None


def split_record(record: Record, cues: list[Cue], max_seconds: float) -> list[Record]:
    """One record per segment of ``cues``, ids ``<id>#000``..., with ``offset``/``duration`` fields."""
    out = []
    for k, seg in enumerate(group_cues(cues, max_seconds)):
        fields = {**record.fields, "offset": seg.start, "duration": round(seg.end - seg.start, 3), "text": seg.text}
        out.append(dataclasses.replace(record, id=f"{record.id}#{k:03d}", label=seg.text, text=seg.text,
                                       fields=fields))
    return out
