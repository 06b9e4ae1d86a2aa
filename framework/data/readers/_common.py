"""Shared pieces of the readers: options, line iteration, field checks, record building."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from framework.data.errors import DataError, DataErrors
from framework.data.paths import relative_id, resolve_media
from framework.data.probes import Probe
from framework.data.records import Quarantined, Record
from framework.data.textio import read_lines


@dataclass(frozen=True)
class ReadOptions:
    """What every reader receives besides the file.

    Attributes:
        root: The data root; media paths resolve against it and may not leave it.
        split: The split name given to every record.
        slices: Slice fields copied from each line into :attr:`Record.slices`.
        allow_outside_root: Accept media paths outside ``root``.
        probe: A decoding check run on every media file; failures are quarantined.
        columns: ``data.columns``: the record field -> the column (key) of the input that holds it
            (``{"text": "sentence"}``); readers that support it rename before reading.
    """

    root: Path
    split: str
    slices: tuple[str, ...] = ()
    allow_outside_root: bool = False
    probe: Probe | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


MAX_LINE_ERRORS = 50  # bad lines listed per file; the rest are counted


class LineErrors:
    """Collects the bad lines of one input file, so a reader reports all of them in one run.

    Use :meth:`at` around the handling of one line: a :class:`DataError` raised inside is recorded
    and reading goes on. :meth:`check` raises once, at the end, listing every bad line (up to
    :data:`MAX_LINE_ERRORS`, then a count).
    """

    def __init__(self, path: Path, limit: int = MAX_LINE_ERRORS) -> None:
        self.path = Path(path)
        self.limit = limit
        self.errors: list[DataError] = []
        self.total = 0

    def add(self, error: DataError) -> None:
        """Record one bad line."""
        self.total += 1
        if len(self.errors) < self.limit:
            self.errors.append(error)

    @contextmanager
    def at(self, where: str = "") -> Iterator[None]:
        """Record a :class:`DataError` raised in the block instead of stopping."""
        try:
            yield
        except DataErrors as exc:
            for error in exc.errors:
                self.add(error)
            self.total += exc.total - len(exc.errors)
        except DataError as exc:
            self.add(exc)

    def check(self) -> None:
        """Raise :class:`DataErrors` (or the single :class:`DataError`) when any line was bad."""
        if self.total == 1:
            raise self.errors[0]
        if self.total:
            raise DataErrors(str(self.path), self.errors, self.total)


def parse_json_line(text: str, where: str) -> dict[str, Any]:
    """One JSONL line as an object.

    Raises:
        DataError: for text that is not one JSON object, with the column of the problem.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        column = min(exc.pos, len(text)) + 1
        end = ", the end of the line" if exc.pos >= len(text.rstrip()) else ""
        raise DataError(where, f"not valid JSON ({exc.msg} at column {column}{end})",
                        "Fix or remove the line; each line must be one JSON object.") from None
    if not isinstance(obj, dict):
        raise DataError(where, f"expected a JSON object, got {type(obj).__name__}",
                        "Write one object per line, e.g. {\"path\": ..., \"label\": ...}.")
    return obj


def iter_jsonl(path: Path, errors: LineErrors | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file.

    With ``errors``, lines that are not UTF-8 or not a JSON object are recorded there and skipped
    (call ``errors.check()`` after the loop); without, the first one raises.

    Raises:
        DataError: (without ``errors``) for a bad line, naming ``path:line`` and the column.
    """
    for lineno, text in read_lines(path, errors):
        if not text.strip():
            continue
        if errors is None:
            yield lineno, parse_json_line(text, f"{path}:{lineno}")
            continue
        obj = None
        with errors.at():
            obj = parse_json_line(text, f"{path}:{lineno}")
        if obj is not None:
            yield lineno, obj


def get_field(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str, *, required: bool = True) -> Any:
    """``obj[key]`` checked against ``types``; ``None`` when optional and absent.

    Raises:
        DataError: when a required field is missing or a present one has the wrong type.
    """
    if key not in obj or obj[key] is None:
        if required:
            raise DataError(where, f"missing required field {key!r} (fields present: {sorted(obj)})",
                            f"Add {key!r} to the line or choose another data.format.")
        return None
    value = obj[key]
    # bool is an int subclass; a duration of `true` is a mistake, not a number.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        value_ok = False
    else:
        value_ok = isinstance(value, types)
    if not value_ok:
        names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(where, f"field {key!r} must be {names}, got {type(value).__name__} {value!r}",
                        "Fix the value's type in the manifest.")
    return value


def map_columns(obj: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """``obj`` with each ``columns`` entry (field -> source column) copied to the field's name;
    the source column stays too. Columns absent from ``obj`` are left out."""
    out = dict(obj)
    for target, source in columns.items():
        if source in obj:
            out[target] = obj[source]
    return out


class Collector:
    """Builds the records of one input file: the helper every reader (and a plugin's) uses.

    It resolves media paths against ``opts.root`` (refusing paths and symbolic links that leave
    it unless ``opts.allow_outside_root``), quarantines missing or undecodable media with a
    reason, refuses two records with one id, and collects bad lines so that :meth:`result`
    reports all of them at once::

        col = Collector(path, opts)
        for line, obj in col.jsonl():           # or any loop over your file's lines
            with col.line(line):                # a DataError here is recorded, reading goes on
                col.add(line, obj, media=obj["path"], label=obj.get("label"))
        return col.result()                     # raises DataErrors listing every bad line

    Attributes:
        path: The input file.
        opts: The reader options (root, split, slices, probe).
        records: Records added so far.
        quarantined: Items held out so far, each with its reason.
        errors: The bad lines recorded so far.
    """

    def __init__(self, path: Path, opts: ReadOptions) -> None:
        self.path = Path(path)
        self.opts = opts
        self.records: list[Record] = []
        self.quarantined: list[Quarantined] = []
        self.errors = LineErrors(self.path)
        self._ids: dict[str, str] = {}
        self._file_id = relative_id(Path(path).absolute(), opts.root.absolute())

    def where(self, line: int | str) -> str:
        """``path:line`` of a place in the file."""
        return f"{self.path}:{line}"

    def line(self, line: int | str) -> Any:
        """A context manager: a :class:`DataError` raised while handling ``line`` is recorded."""
        return self.errors.at(self.where(line))

    def jsonl(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, object)`` per non-blank line of a JSONL file; bad lines are recorded."""
        return iter_jsonl(self.path, self.errors)

    def text_lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, text)`` per line; lines that are not UTF-8 are recorded."""
        return read_lines(self.path, self.errors)

    def add(self, line: int | str, fields: Mapping[str, Any], *, media: str | None = None, label: Any = None,
            text: str | None = None, record_id: Any = None, where: str | None = None) -> Record | None:
        """Add one record; returns it, or ``None`` when its media was quarantined.

        ``line`` names the place in the file (also the fallback id); ``where`` overrides the
        record's source (folder readers use the media path itself).

        Raises:
            DataError: for a media path outside the root or an id already used.
        """
        where = where or self.where(line)
        media_path = None
        if media is not None:
            media_path = resolve_media(media, root=self.opts.root, base=self.path.parent, where=where,
                                       allow_outside_root=self.opts.allow_outside_root)
        rid = self._record_id(record_id, media_path, line, where)
        slices = {k: str(fields[k]) for k in self.opts.slices if fields.get(k) is not None}
        record = Record(id=rid, split=self.opts.split, source=where, media=media_path, label=label,
                        text=text, slices=slices, fields=dict(fields))
        if media_path is not None and self._quarantine_media(media_path, where, rid):
            return None
        self.records.append(record)
        return record

    def _record_id(self, explicit: Any, media: Path | None, line: int | str, where: str) -> str:
        if explicit is not None:
            rid = str(explicit)
        elif media is not None:
            rid = relative_id(media, self.opts.root.absolute())
        else:
            rid = f"{self._file_id}:{line}"
        if rid in self._ids:
            raise DataError(where, f"record id {rid!r} already used at {self._ids[rid]}",
                            "Give each line a unique 'id' (or remove the repeated line).")
        self._ids[rid] = where
        return rid

    def _quarantine_media(self, media: Path, where: str, rid: str) -> bool:
        if not media.is_file():
            self.quarantined.append(Quarantined(where, "missing_file",
                                                f"{media} does not exist; fix the path or restore the file", rid))
            return True
        if self.opts.probe is not None:
            result = self.opts.probe(media)
            if not result.ok:
                self.quarantined.append(Quarantined(where, result.reason or "undecodable", result.detail, rid))
                return True
        return False

    def result(self) -> tuple[list[Record], list[Quarantined]]:
        """The records and quarantined items.

        Raises:
            DataError: when lines were bad: :class:`DataErrors` listing each ``file:line`` (up to
                :data:`MAX_LINE_ERRORS`), or the one error when a single line was bad.
        """
        self.errors.check()
        return self.records, self.quarantined
