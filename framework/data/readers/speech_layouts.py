"""The speech layouts people already have, read into the same records as a NeMo manifest.

Every reader gives records whose ``label`` and ``text`` are the transcript and whose fields hold
``audio_filepath``, ``text``, ``speaker`` and, where the layout says, ``language``, ``offset`` and
``duration``, so the speech modality and the audit treat them alike:

- ``common_voice``: a Common Voice ``train.tsv``/``dev.tsv``/``test.tsv`` beside ``clips/``;
  ``client_id`` is the speaker, ``accents``/``locale`` become slices, ``locale`` the language.
- ``kaldi``: a Kaldi data dir (``wav.scp``, ``text``, optional ``utt2spk``, ``segments``,
  ``spk2gender``).
- ``librispeech``: ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` beside the audio.
- ``audio_text_folder``: audio files with same-named ``.txt`` transcripts.
- ``audiofolder``: the Hugging Face layout, audio plus ``metadata.csv``/``metadata.jsonl``.
- ``speech``: any of these (or a NeMo manifest), chosen from the files; the speech modality's
  reader when ``data.format=auto``.

Bad lines are collected and reported together (``file:line``); audio that is missing or has no
transcript is quarantined with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

from framework.data.errors import DataError
from framework.data.probes import AUDIO_EXTENSIONS
from framework.data.readers._common import Collector, ReadOptions
from framework.data.readers.images_layouts import is_audio_metadata_folder, read_metadata_folder
from framework.data.readers.layouts import describe, not_a_layout, walk_files
from framework.data.records import Quarantined, Record
from framework.data.shards import is_shard_spec, read_shards
from framework.data.textio import read_lines

log = logging.getLogger(__name__)

TRANSCRIPT_KEYS = ("transcription", "text", "sentence", "transcript")
SPEECH_LAYOUTS = ("speech", "nemo_audio", "common_voice", "kaldi", "librispeech", "audio_text_folder", "audiofolder")
_CV_REQUIRED = ("path", "sentence")
_LAYOUT_HELP = ("a NeMo manifest (.jsonl with audio_filepath, duration, text), a Common Voice .tsv beside clips/, "
                "a Kaldi data dir (wav.scp, text, utt2spk), a LibriSpeech folder (*.trans.txt), a folder of audio "
                "with same-named .txt transcripts, or an audiofolder with metadata.csv")


def _fields(media: str, text: str, speaker: str | None, **extra: Any) -> dict[str, Any]:
    fields = {"audio_filepath": media, "text": text, **{k: v for k, v in extra.items() if v not in (None, "")}}
    if speaker:
        fields["speaker"] = speaker
    return fields


# --- Common Voice ------------------------------------------------------------------------------

def _tsv_rows(col: Collector) -> Iterator[tuple[int, list[str]]]:
    # Common Voice sentences hold quotes, so cells are split on tabs only (no CSV quoting).
    for line, text in col.text_lines():
        if text.strip():
            yield line, text.split("\t")


def read_common_voice(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read one Common Voice split file (``train.tsv``, ``dev.tsv``, ``test.tsv``...).

    Columns: ``path`` (the clip, under ``clips/`` beside the file), ``sentence`` (the transcript),
    ``client_id`` (the speaker), and optional ``accents``/``accent``, ``locale``, ``age``,
    ``gender``, ``up_votes``, ``down_votes``. ``accent`` and ``locale`` are always slices of the
    record; ``locale``'s language part (``pt`` of ``pt-BR``) is its ``language``.

    Raises:
        DataError: when the header lacks ``path``/``sentence`` (naming the columns found), or
            listing each row whose cell count differs from the header's.
    """
    col = Collector(path, opts)
    rows = _tsv_rows(col)
    header_line = next(rows, None)
    header = [h.strip() for h in header_line[1]] if header_line else []
    missing = [c for c in _CV_REQUIRED if c not in header]
    if missing:
        col.errors.check()
        raise DataError(f"{path}:1", f"header {header!r} lacks {missing}",
                        "A Common Voice split file is tab-separated with columns client_id, path, sentence...; "
                        "for another table set data.format=csv.")
    for line, cells in rows:
        with col.line(line):
            if len(cells) != len(header):
                raise DataError(col.where(line), f"{len(cells)} tab-separated cells, the header has {len(header)}",
                                "Fix the row (a stray tab in the sentence?) or remove it.")
            row = dict(zip(header, cells))
            _add_common_voice(col, line, row)
    return col.result()


def _add_common_voice(col: Collector, line: int, row: dict[str, str]) -> None:
    clip = row["path"].strip()
    if not clip:
        raise DataError(col.where(line), "empty 'path' cell", "Name the clip file, or remove the row.")
    media = clip if "/" in clip else f"clips/{clip}"
    text = row["sentence"]
    accent = row.get("accents") or row.get("accent") or ""
    locale = row.get("locale") or ""
    fields = _fields(media, text, row.get("client_id"), accent=accent, locale=locale,
                     language=locale.split("-")[0].lower() or None, age=row.get("age"), gender=row.get("gender"),
                     up_votes=row.get("up_votes"), down_votes=row.get("down_votes"))
    record = col.add(line, fields, media=str(col.path.parent / media), label=text, text=text)
    if record is not None:
        record.slices.update({k: fields[k] for k in ("accent", "locale") if k in fields})


def is_common_voice(path: Path) -> bool:
    """Detector: a ``.tsv`` file whose header holds ``path`` and ``sentence``."""
    if not (path.is_file() and path.suffix.lower() == ".tsv"):
        return False
    with path.open(encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    return all(c in header for c in _CV_REQUIRED)


# --- Kaldi -------------------------------------------------------------------------------------

def _table(col: Collector, file: Path, *, min_fields: int = 2) -> dict[str, tuple[str, str]]:
    """``key -> (rest of line, file:line)`` of a Kaldi table file; bad lines recorded in ``col``."""
    out: dict[str, tuple[str, str]] = {}
    if not file.is_file():
        return out
    for line, text in read_lines(file, col.errors):
        where = f"{file}:{line}"
        parts = text.strip().split(maxsplit=1)
        if not parts:
            continue
        if len(parts) < min_fields:
            col.errors.add(DataError(where, f"{parts[0]!r} has no value", f"Write '<key> <value>' lines in {file.name}."))
            continue
        if parts[0] in out:
            col.errors.add(DataError(where, f"key {parts[0]!r} repeats {out[parts[0]][1]}", "Keep one line per key."))
            continue
        out[parts[0]] = (parts[1] if len(parts) > 1 else "", where)
    return out


def _wav_path(value: str, where: str) -> str:
    if value.endswith("|"):
        raise DataError(where, f"a command pipe ({value[:60]!r}) is not a file",
                        "Write the audio out to files (e.g. with sox or Kaldi's wav-copy) and list their paths "
                        "in wav.scp.")
    if ".ark:" in value:
        raise DataError(where, f"an archive offset ({value[:60]!r}) is not a file",
                        "Write the audio out to files (Kaldi's wav-copy ark:... ark,scp:...) and list their paths.")
    return value


def read_kaldi(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a Kaldi data directory: ``wav.scp`` (recording -> audio file), ``text`` (utterance ->
    transcript), and optional ``utt2spk`` (the speaker), ``segments`` (utterance -> recording,
    start, end seconds; then the recording's file is cut) and ``spk2gender``.

    An utterance with audio but no ``text`` line, or text but no audio, is quarantined with the
    reason. Command pipes and archive offsets in ``wav.scp`` are bad lines naming the fix.

    Raises:
        DataError: when ``path`` lacks ``wav.scp`` or ``text`` (naming what it holds), or listing
            each bad line.
    """
    path = Path(path)
    if not (path / "wav.scp").is_file() or not (path / "text").is_file():
        raise not_a_layout(path, "a Kaldi data dir with wav.scp and text (utt2spk, segments optional)",
                           "Point data.train at the data dir, or choose another data.format.")
    col = Collector(path, opts)
    wavs = _table(col, path / "wav.scp")
    text_table = _table(col, path / "text", min_fields=1)
    texts = {k: v for k, (v, _) in text_table.items()}
    text_where = {k: w for k, (_, w) in text_table.items()}
    speakers = {k: v.strip() for k, (v, _) in _table(col, path / "utt2spk").items()}
    genders = {k: v.strip() for k, (v, _) in _table(col, path / "spk2gender").items()}
    segments = _table(col, path / "segments")
    if segments:
        utterances = {}
        for utt, (rest, where) in segments.items():
            with col.errors.at():
                utterances[utt] = _segment(rest, where, wavs)
    else:
        utterances = {utt: (value, where, None, None) for utt, (value, where) in wavs.items()}
    for utt, (value, where, start, end) in utterances.items():
        with col.errors.at():
            media = _wav_path(value.strip(), where)
            if utt not in texts:
                col.quarantined.append(Quarantined(where, "missing_transcript",
                                                   f"utterance {utt!r} has no line in {path / 'text'}", utt))
                continue
            text = texts[utt].strip()
            speaker = speakers.get(utt)
            duration = round(end - start, 3) if start is not None and end is not None else None
            fields = _fields(media, text, speaker, utt_id=utt, gender=genders.get(speaker or ""),
                             offset=start, duration=duration)
            col.add(utt, fields, media=media, label=text, text=text, record_id=utt, where=text_where.get(utt, where))
    for utt in texts.keys() - utterances.keys():
        col.quarantined.append(Quarantined(text_where[utt], "missing_file",
                                           f"utterance {utt!r} has no audio in {'segments' if segments else 'wav.scp'}",
                                           utt))
    return col.result()


def _segment(rest: str, where: str, wavs: dict[str, tuple[str, str]]) -> tuple[str, str, float, float]:
    parts = rest.split()
    if len(parts) != 3:
        raise DataError(where, f"expected '<utterance> <recording> <start> <end>', got {len(parts) + 1} fields",
                        "Fix the segments line.")
    recording, start, end = parts
    try:
        t0, t1 = float(start), float(end)
    except ValueError:
        raise DataError(where, f"start/end {start!r} {end!r} are not seconds", "Write them as numbers.") from None
    if t1 <= t0 or t0 < 0:
        raise DataError(where, f"segment {t0}..{t1} is empty or negative", "Fix start and end (seconds).")
    if recording not in wavs:
        raise DataError(where, f"recording {recording!r} is not in wav.scp", "Add it to wav.scp or remove the segment.")
    return wavs[recording][0], wavs[recording][1], t0, t1


def is_kaldi(path: Path) -> bool:
    """Detector: a folder holding ``wav.scp`` and ``text``."""
    return path.is_dir() and (path / "wav.scp").is_file() and (path / "text").is_file()


# --- LibriSpeech -------------------------------------------------------------------------------

def read_librispeech(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a LibriSpeech-style folder: each ``*.trans.txt`` holds ``<utterance id> <TRANSCRIPT>``
    lines for the audio files beside it (``<utterance id>.flac``, or another audio extension).

    The id's first part (``84`` of ``84-121123-0000``) is the speaker, the second the chapter.
    An utterance whose audio is missing is quarantined.

    Raises:
        DataError: when no ``*.trans.txt`` is found, or listing each bad line.
    """
    path = Path(path)
    files = sorted(f for f in walk_files(path, 10**9) if f.name.endswith(".trans.txt"))
    if not files:
        raise not_a_layout(path, "LibriSpeech folders with <speaker>-<chapter>.trans.txt beside the audio",
                           "Point data.train at the split folder (e.g. train-clean-100), or choose another data.format.")
    col = Collector(path, opts)
    for file in files:
        for line, text in read_lines(file, col.errors):
            where = f"{file}:{line}"
            with col.errors.at():
                if not text.strip():
                    continue
                parts = text.strip().split(maxsplit=1)
                utt = parts[0]
                transcript = parts[1] if len(parts) > 1 else ""
                audio = next((file.parent / f"{utt}{ext}" for ext in (".flac", ".wav", ".opus", ".mp3", ".ogg")
                              if (file.parent / f"{utt}{ext}").exists()), file.parent / f"{utt}.flac")
                pieces = utt.split("-")
                fields = _fields(str(audio), transcript, pieces[0] if len(pieces) > 1 else None,
                                 chapter=pieces[1] if len(pieces) > 2 else None)
                col.add(line, fields, media=str(audio), label=transcript, text=transcript, record_id=utt, where=where)
    return col.result()


def is_librispeech(path: Path) -> bool:
    """Detector: a folder with ``*.trans.txt`` files up to two folders down."""
    if not path.is_dir():
        return False
    return any(next(path.glob(pattern), None) for pattern in ("*.trans.txt", "*/*.trans.txt", "*/*/*.trans.txt"))


# --- audio with same-named transcripts ---------------------------------------------------------

def read_audio_text_folder(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a folder (and its sub-folders) of audio files each with a same-named ``.txt``
    transcript (``a.wav`` + ``a.txt``).

    Audio without a transcript is quarantined (``missing_transcript``), and so is a transcript
    without audio (``missing_file``). A file in a sub-folder keeps the sub-folder's name as
    ``folder``.

    Raises:
        DataError: when ``path`` holds no audio (naming what it holds), or a transcript that is
            not UTF-8.
    """
    path = Path(path)
    files = list(walk_files(path, 10**9))
    audio = [f for f in files if f.suffix.lower() in AUDIO_EXTENSIONS]
    if not audio:
        raise not_a_layout(path, f"audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) with same-named .txt "
                           "transcripts", "Point data.train at the folder of audio, or choose another data.format.")
    col = Collector(path, opts)
    stems = {f.with_suffix("") for f in audio}
    for file in audio:
        transcript_file = file.with_suffix(".txt")
        rel = file.relative_to(path)
        if not transcript_file.is_file():
            col.quarantined.append(Quarantined(str(file), "missing_transcript",
                                               f"no {transcript_file.name} beside it; write the transcript there",
                                               rel.as_posix()))
            continue
        with col.errors.at():
            lines = [t for _, t in read_lines(transcript_file, col.errors)]
            text = " ".join(t.strip() for t in lines if t.strip())
            folder = rel.parent.as_posix() if rel.parent != Path(".") else None
            col.add(rel.as_posix(), _fields(str(file), text, None, folder=folder), media=str(file), label=text,
                    text=text, where=str(transcript_file))
    for orphan in (f for f in files if f.suffix.lower() == ".txt" and f.with_suffix("") not in stems):
        col.quarantined.append(Quarantined(str(orphan), "missing_file",
                                           f"transcript without audio: no audio file named {orphan.stem}.* beside it"))
    return col.result()


def is_audio_text_folder(path: Path) -> bool:
    """Detector: a folder with at least one audio file that has a same-named ``.txt``."""
    if not path.is_dir():
        return False
    names = {f for f in walk_files(path, 2000)}
    return any(f.suffix.lower() in AUDIO_EXTENSIONS and f.with_suffix(".txt") in names for f in names)


# --- audiofolder -------------------------------------------------------------------------------

def read_audiofolder(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a Hugging Face ``audiofolder``: audio plus ``metadata.csv``/``metadata.jsonl`` with a
    ``file_name`` column; the transcript is ``transcription``, ``text``, ``sentence`` or
    ``transcript``, and other columns (``speaker``, ``language``...) are kept as fields."""
    records, quarantined = read_metadata_folder(path, opts, label_keys=TRANSCRIPT_KEYS, text_keys=TRANSCRIPT_KEYS,
                                                label_from_folder=False)
    for record in records:
        if record.text is not None:
            record.fields.setdefault("text", record.text)
    return records, quarantined


# --- choosing the layout -----------------------------------------------------------------------

def _detectors() -> list[tuple[str, Any, Any]]:
    return list(reversed(speech_layout_readers()[1:]))  # the most specific first; not "speech" itself


def speech_layout(path: Path) -> str:
    """The speech layout of ``path``: ``shards`` for tar shards (audio members with transcripts),
    else the first speech detector that matches, else ``nemo_audio`` for a ``.jsonl`` manifest.

    Raises:
        DataError: when ``path`` is none of the speech layouts, naming what it holds and the
            layouts read.
    """
    path = Path(path)
    if is_shard_spec(path):
        return "shards"
    for name, _, detect in _detectors():
        if detect(path):
            return name
    if path.is_file() and path.suffix.lower() in {".jsonl", ".ndjson"}:
        return "nemo_audio"
    raise DataError(str(path), f"not a speech layout: {describe(path)}",
                    f"Use {_LAYOUT_HELP}; or set data.format to one of {', '.join(SPEECH_LAYOUTS)}.")


def read_speech(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read any speech layout (format ``speech``, what the speech modality reads when
    ``data.format=auto``): the layout is chosen by :func:`speech_layout` and logged."""
    from framework.data.readers.audio import read_nemo_audio

    name = speech_layout(path)
    log.info("data.%s: reading %s as %s (data.format=auto; set data.format to choose)", opts.split, path, name)
    readers = {n: reader for n, reader, _ in speech_layout_readers()[1:]}
    readers["shards"] = read_shards
    return (readers.get(name) or read_nemo_audio)(path, opts)


def speech_layout_readers() -> list[tuple[str, Any, Any]]:
    """``(format, reader, detector)`` of the speech layouts, for the built-in registry (the most
    specific last, since the registry tries the most recent detector first); ``speech`` reads any
    of them and has no detector."""
    return [
        ("speech", read_speech, None),
        ("audio_text_folder", read_audio_text_folder, is_audio_text_folder),
        ("audiofolder", read_audiofolder, is_audio_metadata_folder),
        ("librispeech", read_librispeech, is_librispeech),
        ("kaldi", read_kaldi, is_kaldi),
        ("common_voice", read_common_voice, is_common_voice),
    ]
