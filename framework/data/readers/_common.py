"""Shared pieces of the readers: options, line iteration, field checks, record building."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from framework.data.errors import DataError
from framework.data.paths import relative_id, resolve_media
from framework.data.probes import Probe
from framework.data.records import Quarantined, Record


@dataclass(frozen=True)
class ReadOptions:
    """What every reader receives besides the file.

    Attributes:
        root: The data root; media paths resolve against it and may not leave it.
        split: The split name given to every record.
        slices: Slice fields copied from each line into :attr:`Record.slices`.
        allow_outside_root: Accept media paths outside ``root``.
        probe: A decoding check run on every media file; failures are quarantined.
    """

    root: Path
    split: str
    slices: tuple[str, ...] = ()
    allow_outside_root: bool = False
    probe: Probe | None = None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file.

    Raises:
        DataError: for a line that is not a JSON object, naming ``path:line``.
    """
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}", f"not valid JSON ({exc.msg} at column {exc.colno})",
                                "Fix or remove the line; each line must be one JSON object.") from exc
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}", f"expected a JSON object, got {type(obj).__name__}",
                                "Write one object per line, e.g. {\"path\": ..., \"label\": ...}.")
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


class Collector:
    """Builds the records of one input file, quarantining unusable media and refusing id clashes."""

    def __init__(self, path: Path, opts: ReadOptions) -> None:
        self.path = Path(path)
        self.opts = opts
        self.records: list[Record] = []
        self.quarantined: list[Quarantined] = []
        self._ids: dict[str, str] = {}
        self._file_id = relative_id(Path(path).absolute(), opts.root.absolute())

    def where(self, line: int | str) -> str:
        """``path:line`` of a place in the file."""
        return f"{self.path}:{line}"

    def add(self, line: int | str, fields: Mapping[str, Any], *, media: str | None = None, label: Any = None,
            text: str | None = None, record_id: Any = None, where: str | None = None) -> Record | None:
        """Add one record; returns it, or ``None`` when its media was quarantined.

        ``line`` names the place in the file (also the fallback id); ``where`` overrides the
        record's source (folder readers use the media path itself).
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
        """The records and quarantined items collected so far."""
        return self.records, self.quarantined
