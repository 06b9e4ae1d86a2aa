"""WebDataset-style tar shards: naming them, listing their samples, reading their members.

A shard is a plain (uncompressed) tar file whose members are grouped into samples by key: the
member name up to its first dot after the last slash is the key, the rest its extension::

    shard-000000.tar
      0001.jpg   0001.txt             an image and its caption (alignment)
      0002.png   0002.json            an image and {"label": ..., "captions": [...], ...}
      0003.jpg   0003.cls             an image and its class name (vision)
      0004.flac  0004.txt             audio and its transcript (speech)

``data.train=shards/shard-{000000..000099}.tar`` names a hundred shards (a brace range, expanded
here), ``data.train=shards/`` every ``*.tar`` of a folder; ``data.format=shards`` reads either, and
``data.format=auto`` picks it for a ``.tar`` path or a brace range.

A sample's media file is addressed as a path *inside* its shard, ``shard-000000.tar/0001.jpg``
(:func:`member_path`), so a :class:`~framework.data.records.Record` of a shard sample looks like any
other. :func:`open_media` opens either kind of path; the probes, the fingerprints and the image
decoding read media through it. Members are located from the tar headers only (no data read),
and each process keeps the index of the last few shards it touched.

The tar format is read with the standard library's :mod:`tarfile`; see ``docs/data.md`` (Shards)
for why not the ``webdataset`` package.
"""

from __future__ import annotations

import functools
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

from framework.data.errors import DataError
from framework.data.records import DataBundle, Quarantined, Record

SHARD_SUFFIX = ".tar"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp")
AUDIO_EXTS = ("wav", "flac", "mp3", "ogg", "opus")
TEXT_EXT, JSON_EXT, CLASS_EXT = "txt", "json", "cls"
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
INDEX_CACHE = 64  # shards whose member index a process keeps


# --- naming shards -----------------------------------------------------------------------------


def is_shard_spec(value: str | Path) -> bool:
    """Whether ``value`` names shards: a ``.tar`` file, a brace range such as ``shard-{000..009}.tar``,
    or a folder holding ``*.tar`` files and nothing that another reader would take."""
    text = str(value)
    if _RANGE.search(text) and text.endswith(SHARD_SUFFIX):
        return True
    path = Path(text)
    if path.suffix == SHARD_SUFFIX:
        return True
    return path.is_dir() and any(path.glob(f"*{SHARD_SUFFIX}")) and not any(
        p for p in path.iterdir() if p.suffix not in (SHARD_SUFFIX, ".md", ".yaml", ".json"))


def expand_shards(spec: str | Path, root: Path | None = None) -> list[Path]:
    """The shard files ``spec`` names, in order.

    ``spec`` is one ``.tar`` file, a pattern with one or more numeric brace ranges
    (``shard-{000000..000099}.tar``: zero-padded to the width written), or a folder (its ``*.tar``,
    sorted). A relative spec is taken under ``root``.

    Raises:
        DataError: naming the spec when a named shard is missing or nothing matches.
    """
    text = str(spec)
    base = Path(root) if root is not None and not Path(text).is_absolute() else None
    names = _expand_ranges(text)
    paths = [base / n if base is not None else Path(n) for n in names]
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(paths[0].glob(f"*{SHARD_SUFFIX}"))
        if not paths:
            raise DataError(text, "the folder holds no .tar shards", "Point the split at shard files (docs/data.md#shards).")
        return paths
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DataError(text, f"{len(missing)} of {len(paths)} shard(s) not found: {shown}",
                        "Check the brace range against the files written (ls the shard folder).")
    return paths


def _expand_ranges(text: str) -> list[str]:
    match = _RANGE.search(text)
    if match is None:
        return [text]
    lo, hi = match.group(1), match.group(2)
    if int(hi) < int(lo):
        raise DataError(text, f"brace range {{{lo}..{hi}}} is empty", "Write the lower bound first.")
    width = len(lo) if lo.startswith("0") else 0
    head, tail = text[: match.start()], text[match.end():]
    return [name for i in range(int(lo), int(hi) + 1) for name in _expand_ranges(f"{head}{i:0{width}d}{tail}")]


# --- samples -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardSample:
    """One sample of a shard: where its members' bytes are, not the bytes.

    Attributes:
        shard: The shard file.
        key: The sample key (member names up to the extension).
        members: Extension (lower case, without the dot) -> ``(offset of the data, size)``.
        index: The sample's position in its shard (0-based).
    """

    shard: Path
    key: str
    members: Mapping[str, tuple[int, int]]
    index: int = 0

    @property
    def id(self) -> str:
        """The record id: ``<shard file stem>/<key>``, unique across shards."""
        return f"{self.shard.stem}/{self.key}"

    def media_ext(self) -> str | None:
        """The extension of the sample's image or audio member, or ``None``."""
        return next((e for e in (*IMAGE_EXTS, *AUDIO_EXTS) if e in self.members), None)


@dataclass
class LoadedSample:
    """A sample with its members' bytes, as a stream hands it to a decoder.

    Attributes:
        shard: The shard file.
        key: The sample key.
        data: Extension -> the member's bytes.
    """

    shard: Path
    key: str
    data: dict[str, bytes] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The record id, as :attr:`ShardSample.id`."""
        return f"{self.shard.stem}/{self.key}"

    def text(self) -> str | None:
        """The ``.txt`` member as UTF-8 text (stripped), or ``None``."""
        raw = self.data.get(TEXT_EXT)
        return raw.decode("utf-8").strip() if raw is not None else None

    def json(self) -> dict[str, Any]:
        """The ``.json`` member as an object (``{}`` without one)."""
        raw = self.data.get(JSON_EXT)
        return dict(json.loads(raw)) if raw is not None else {}

    def media(self, kind: str | None = None) -> tuple[str, bytes]:
        """``(extension, bytes)`` of the sample's media member: its image (``kind="image"``,
        :data:`IMAGE_EXTS`), its audio (``"audio"``, :data:`AUDIO_EXTS`) or either (``None``).

        Raises:
            ValueError: naming the members when the sample has no such member.
        """
        kinds = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, None: (*IMAGE_EXTS, *AUDIO_EXTS)}[kind]
        ext = next((e for e in kinds if e in self.data), None)
        if ext is None:
            raise ValueError(f"{self.shard}:{self.key}: no {kind or 'media'} member ({'/'.join(kinds)}); "
                             f"members: {sorted(self.data)}")
        return ext, self.data[ext]

    def transcript(self) -> str | None:
        """The sample's text: the ``.txt`` member, else the JSON's ``text`` string, else ``None``."""
        text = self.text()
        if text is None:
            value = self.json().get("text")
            text = value if isinstance(value, str) else None
        return text

    def label(self, audio: bool | None = None) -> Any:
        """The sample's label: the ``.cls`` member, else the JSON's ``label``, else for audio the
        transcript (the speech label); ``None`` without one. ``audio`` says whether the sample is
        audio when its media member is not loaded (``None``: look for an audio member)."""
        if CLASS_EXT in self.data:
            return self.data[CLASS_EXT].decode("utf-8").strip()
        label = self.json().get("label")
        if label is None and (any(e in self.data for e in AUDIO_EXTS) if audio is None else audio):
            label = self.transcript()
        return label


def _split_name(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    key, dot, ext = base.partition(".")
    return (f"{folder}/{key}" if folder else key), ext.lower() if dot else ""


def scan_shard(path: Path) -> Iterator[ShardSample]:
    """The samples of one shard, in file order, read from the tar headers only.

    Members of one key must be adjacent (as tar writers of WebDataset shards write them); a key
    met again later starts a new sample and the caller sees two samples with one id.

    Raises:
        DataError: naming the shard when it is not a readable tar file.
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:") as tar:
            key, members, index = None, {}, 0
            while (info := tar.next()) is not None:
                tar.members = []  # keep no TarInfo list: a shard's listing stays O(1) in memory
                if not info.isfile():
                    continue
                k, ext = _split_name(info.name)
                if k != key and key is not None:
                    yield ShardSample(path, key, members, index)
                    members, index = {}, index + 1
                key = k
                members[ext] = (info.offset_data, info.size)
            if key is not None:
                yield ShardSample(path, key, members, index)
    except (tarfile.TarError, OSError) as exc:
        raise DataError(str(path), f"not a readable tar shard ({type(exc).__name__}: {exc})",
                        "Rewrite the shard (tar cf) or remove it from the split.") from None


def load_sample(sample: ShardSample, handle: IO[bytes] | None = None) -> LoadedSample:
    """Read a sample's members (one seek and read each); ``handle`` is an open shard file to reuse."""
    own = handle is None
    fh = sample.shard.open("rb") if own else handle
    try:
        data = {}
        for ext, (offset, size) in sample.members.items():
            fh.seek(offset)
            data[ext] = fh.read(size)
        return LoadedSample(sample.shard, sample.key, data)
    finally:
        if own:
            fh.close()


# --- member paths --------------------------------------------------------------------------------


def member_path(shard: Path, key: str, ext: str) -> Path:
    """The path naming member ``KEY.EXT`` of ``shard``: ``shard.tar/KEY.EXT``."""
    return Path(shard) / f"{key}.{ext}"


def split_member(path: Path | str) -> tuple[Path, str] | None:
    """``(shard, member name)`` when ``path`` names a member inside a ``.tar`` file, else ``None``."""
    path = Path(path)
    for parent in path.parents:
        if parent.suffix == SHARD_SUFFIX:
            if parent.is_file():
                return parent, path.relative_to(parent).as_posix()
            return None
    return None


@functools.lru_cache(maxsize=INDEX_CACHE)
def _member_index(shard: Path, mtime_ns: int) -> dict[str, tuple[int, int]]:
    with tarfile.open(shard, "r:") as tar:
        return {info.name: (info.offset_data, info.size) for info in tar if info.isfile()}


def _locate(path: Path | str) -> tuple[Path, int, int] | None:
    found = split_member(path)
    if found is None:
        return None
    shard, name = found
    where = _member_index(shard, shard.stat().st_mtime_ns).get(name)
    if where is None:
        raise FileNotFoundError(f"{shard} has no member {name!r}")
    return shard, where[0], where[1]


def media_bytes(path: Path | str) -> bytes:
    """The bytes of a media file or of a shard member.

    Raises:
        OSError: when the file or member does not exist or cannot be read.
    """
    located = _locate(path)
    if located is None:
        return Path(path).read_bytes()
    shard, offset, size = located
    with shard.open("rb") as fh:
        fh.seek(offset)
        return fh.read(size)


class MediaFile(io.BytesIO):
    """A media file's bytes in memory, shown as its path (so a decoder's error message names the
    file, not a memory address)."""

    def __init__(self, data: bytes, path: Path | str) -> None:
        super().__init__(data)
        self.path = str(path)

    def __repr__(self) -> str:
        return f"'{self.path}'"


def open_media(path: Path | str) -> Path | IO[bytes]:
    """What a decoder opens: the path itself for a file, an in-memory file for a shard member
    (Pillow, soundfile and the probes accept both)."""
    return Path(path) if split_member(path) is None else MediaFile(media_bytes(path), path)


def media_is_file(path: Path | str) -> bool:
    """Whether ``path`` is a file or an existing shard member."""
    try:
        return Path(path).is_file() or _locate(path) is not None
    except OSError:
        return False


# --- the reader ----------------------------------------------------------------------------------


def sample_problem(sample: ShardSample) -> tuple[str, str] | None:
    """``(reason, detail)`` when a sample cannot be an item (no media nor text; an image without a
    caption, label or JSON; audio without a transcript), else ``None``."""
    ext = sample.media_ext()
    has = sample.members
    where = f"{sample.shard}:{sample.key}"
    if ext is None and TEXT_EXT not in has and JSON_EXT not in has:
        return "missing_media", f"{where}: no image, audio, .txt or .json member (members: {sorted(has)}); " \
                                "write KEY.jpg/KEY.png/KEY.wav/KEY.flac with KEY.txt or KEY.json"
    if ext in AUDIO_EXTS and TEXT_EXT not in has and JSON_EXT not in has:
        return "missing_transcript", f"{where}: audio without KEY.txt transcript; add it or remove the sample"
    if ext in IMAGE_EXTS and not {TEXT_EXT, JSON_EXT, CLASS_EXT} & set(has):
        return "missing_caption", f"{where}: image without KEY.txt caption, KEY.cls label or KEY.json; " \
                                  "add one or remove the sample"
    return None


def record_of(sample: ShardSample, loaded: LoadedSample, split: str, slices: Sequence[str] = ()) -> Record:
    """The record of a shard sample: media is the member path; ``text`` the ``.txt`` member;
    ``label`` the ``.cls`` member, else the JSON ``label``, else (audio) the transcript; the JSON
    object's keys become the record's fields.

    Raises:
        DataError: for a ``.json`` member that is not a JSON object or text that is not UTF-8.
    """
    where = f"{sample.shard}:{sample.key}"
    ext = sample.media_ext()
    try:
        fields = loaded.json()
        text = loaded.transcript()
        # a transcript is the speech label, as in the other speech layouts
        label = loaded.label(audio=ext in AUDIO_EXTS)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(where, f"unreadable .json/.txt/.cls member ({type(exc).__name__}: {exc})",
                        "Write UTF-8 text and one JSON object per sample.") from None
    fields.setdefault("shard", sample.shard.name)
    fields.setdefault("key", sample.key)
    if text is not None and "caption" not in fields and "captions" not in fields and ext in IMAGE_EXTS:
        fields["caption"] = text
    media = member_path(sample.shard, sample.key, ext) if ext is not None else None
    return Record(id=sample.id, split=split, source=where, media=media, label=label, text=text,
                  slices={k: str(fields[k]) for k in slices if fields.get(k) is not None}, fields=fields)


def _text_members(sample: ShardSample) -> ShardSample:
    """The sample restricted to its small members (text, JSON, class), for building the record."""
    small = {e: m for e, m in sample.members.items() if e in (TEXT_EXT, JSON_EXT, CLASS_EXT)}
    return ShardSample(sample.shard, sample.key, small, sample.index)


def read_shards(path: Path, opts: Any) -> tuple[list[Record], list[Quarantined]]:
    """The ``shards`` reader: every sample of every shard ``path`` names, as records.

    Only the small members (``.txt``, ``.json``, ``.cls``) are read, and the media when
    ``opts.probe`` is set (``data.probe_media``, as for every reader: one decode per item in this
    process; ``data.probe_media=false`` leaves decoding to the audit, on every core, and to
    training). Samples that cannot be items (see :func:`sample_problem`), unreadable text members
    and media the probe refuses are quarantined with the reason.

    Raises:
        DataError: when a shard is missing or not a tar file, or one id appears twice.
    """
    records: list[Record] = []
    quarantined: list[Quarantined] = []
    seen: dict[str, str] = {}
    for shard in expand_shards(path, opts.root):
        with shard.open("rb") as fh:
            for sample in scan_shard(shard):
                where = f"{shard}:{sample.key}"
                problem = sample_problem(sample)
                if problem is not None:
                    quarantined.append(Quarantined(where, problem[0], problem[1], sample.id))
                    continue
                if sample.id in seen:
                    raise DataError(where, f"sample key {sample.key!r} appears twice in {shard.name} "
                                    f"(first at {seen[sample.id]})", "Keep each key's members adjacent and unique.")
                seen[sample.id] = where
                try:
                    record = record_of(sample, load_sample(_text_members(sample), fh), opts.split, opts.slices)
                except DataError as exc:
                    quarantined.append(Quarantined(where, "unreadable_text", str(exc), sample.id))
                    continue
                result = opts.probe(record.media) if opts.probe is not None and record.media is not None else None
                if result is not None and not result.ok:
                    quarantined.append(Quarantined(where, result.reason or "undecodable", result.detail, sample.id))
                    continue
                records.append(record)
    return records, quarantined


def detect_shards(path: Path) -> bool:
    """``data.format=auto`` detector: a ``.tar`` file, a brace range of them, or a folder of them."""
    return is_shard_spec(path)


# --- the shards of a loaded split ----------------------------------------------------------------


def split_shards(bundle: DataBundle, split: str) -> list[Path]:
    """The shard files the records of ``split`` came from, in the order first met (empty when the
    split was not read from shards)."""
    found: dict[Path, None] = {}
    for record in bundle.records(split):
        if record.media is None:
            continue
        member = split_member(record.media)
        if member is not None:
            found.setdefault(member[0], None)
    return list(found)


def quarantined_ids(bundle: DataBundle) -> set[str]:
    """Ids of every item the bundle quarantined (a shard stream skips them)."""
    return {q.record_id for q in bundle.quarantine if q.record_id}


# --- writing shards (examples, benches, tests) ---------------------------------------------------


class ShardWriter:
    """Write samples into numbered shards of at most ``per_shard`` samples each.

    ``ShardWriter(dir, per_shard=1000).write("0001", {"jpg": jpeg_bytes, "txt": b"a red circle"})``
    writes ``dir/shard-000000.tar``...; :attr:`paths` lists them and :meth:`spec` returns the brace
    range to put in ``data.train``. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, folder: Path, per_shard: int = 1000, prefix: str = "shard-") -> None:
        self.folder, self.per_shard, self.prefix = Path(folder), per_shard, prefix
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []
        self._tar: tarfile.TarFile | None = None
        self._count = 0

    def write(self, key: str, members: Mapping[str, bytes]) -> None:
        """Add one sample: extension -> bytes (written in the order given)."""
        if self._tar is None or self._count >= self.per_shard:
            self._open_next()
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))  # type: ignore[union-attr]
        self._count += 1

    def _open_next(self) -> None:
        if self._tar is not None:
            self._tar.close()
        path = self.folder / f"{self.prefix}{len(self.paths):06d}{SHARD_SUFFIX}"
        self._tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)
        self.paths.append(path)
        self._count = 0

    def spec(self) -> str:
        """``<folder>/<prefix>{000000..N}.tar`` for the shards written."""
        return str(self.folder / f"{self.prefix}{{000000..{len(self.paths) - 1:06d}}}{SHARD_SUFFIX}")

    def close(self) -> None:
        """Finish the last shard."""
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
