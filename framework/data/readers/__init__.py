"""The reader registry: modalities name a format (``"nemo_audio"``) instead of importing a function.

Built-in formats: ``jsonl``, ``csv``, ``image_folder``, ``chat``, ``preference``, ``nemo_audio``,
``label_studio``; ``auto`` picks one from the path (see :func:`detect_format`). A plugin adds its
own with :func:`register_reader`, optionally with a detector so ``auto`` finds it::

    register_reader("parquet_table", read_parquet, detect=lambda p: p.suffix == ".parquet")

A reader is ``reader(path, opts) -> (records, quarantined)`` with
:class:`~framework.data.readers._common.ReadOptions`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from framework.data.errors import DataError
from framework.data.probes import Probe
from framework.data.readers._common import (
    MAX_LINE_ERRORS,
    Collector,
    LineErrors,
    ReadOptions,
    get_field,
    iter_jsonl,
    parse_json_line,
)
from framework.data.readers.audio import read_nemo_audio
from framework.data.readers.folder import read_image_folder
from framework.data.readers.label_studio import read_label_studio
from framework.data.readers.manifest import read_csv, read_jsonl
from framework.data.readers.text import read_chat, read_preference
from framework.data.records import Quarantined, Record

Reader = Callable[[Path, ReadOptions], tuple[list[Record], list[Quarantined]]]
Detector = Callable[[Path], bool]

_READERS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "image_folder": read_image_folder,
    "chat": read_chat,
    "preference": read_preference,
    "nemo_audio": read_nemo_audio,
    "label_studio": read_label_studio,
}
_DETECTORS: list[tuple[str, Detector]] = []  # plugin detectors, tried before the built-in rules


def register_reader(name: str, reader: Reader, *, detect: Detector | None = None, replace: bool = False) -> None:
    """Make ``reader`` available as ``data.format=name``.

    Args:
        name: The format name users write in config.
        reader: ``reader(path, opts) -> (records, quarantined)``.
        detect: Optional ``detect(path) -> bool`` so that ``format=auto`` chooses this reader;
            plugin detectors are tried before the built-in rules, most recent first.
        replace: Allow replacing an existing reader of that name.

    Raises:
        ValueError: when ``name`` is taken and ``replace`` is false.
    """
    if name in _READERS and not replace:
        raise ValueError(f"a reader named {name!r} is already registered; pass replace=True to override it")
    _READERS[name] = reader
    if detect is not None:
        _DETECTORS.insert(0, (name, detect))


def list_readers() -> list[str]:
    """Names of every registered format."""
    return sorted(_READERS)


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``.

    Raises:
        ValueError: naming the known formats when ``name`` is unknown.
    """
    if name not in _READERS:
        raise ValueError(f"unknown data format {name!r}; known formats: {', '.join(list_readers())} (or 'auto')")
    return _READERS[name]


def _first_object(path: Path) -> dict | None:
    with path.open(encoding="utf-8", errors="replace") as fh:  # the reader reports bad bytes
        for line in fh:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return None
                return obj if isinstance(obj, dict) else None
    return None


def detect_format(path: Path) -> str:
    """Choose a format from the path: folder, extension, then the keys of the first JSON line.

    Raises:
        DataError: when no rule matches, naming the formats to choose from.
    """
    path = Path(path)
    for name, detect in _DETECTORS:
        if detect(path):
            return name
    if path.is_dir():
        return "image_folder"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "label_studio"
    if suffix in {".jsonl", ".ndjson"}:
        first = _first_object(path) or {}
        if "messages" in first:
            return "chat"
        if {"prompt", "chosen", "rejected"} <= set(first):
            return "preference"
        if "audio_filepath" in first:
            return "nemo_audio"
        return "jsonl"
    raise DataError(str(path), "cannot tell the data format from the path",
                    f"Set data.format to one of: {', '.join(list_readers())}.")


def read_manifest(
    path: Path | str,
    *,
    root: Path | str,
    split: str,
    format: str = "auto",
    slices: Sequence[str] = (),
    allow_outside_root: bool = False,
    probe: Probe | None = None,
) -> tuple[list[Record], list[Quarantined]]:
    """Read one manifest, folder or export into records and quarantined items.

    Args:
        path: The manifest file or folder.
        root: The data root that media paths resolve against (and may not leave).
        split: Split name for the records.
        format: A registered format name, or ``auto``.
        slices: Fields copied into :attr:`Record.slices`.
        allow_outside_root: Accept media outside ``root``.
        probe: A decoding check (:func:`framework.data.probe_image`...) run on every media file;
            files that fail are quarantined.

    Returns:
        ``(records, quarantined)``; missing or undecodable media are in ``quarantined``.

    Raises:
        DataError: for a malformed line (naming ``file:line``), a path escaping ``root``, or a
            missing manifest.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "file or folder not found", "Check data.root and the split paths.")
    name = detect_format(path) if format == "auto" else format
    opts = ReadOptions(root=Path(root), split=split, slices=tuple(slices),
                       allow_outside_root=allow_outside_root, probe=probe)
    return get_reader(name)(path, opts)


__all__ = ["Collector", "Detector", "LineErrors", "MAX_LINE_ERRORS", "ReadOptions", "Reader", "detect_format", "get_field",
           "get_reader", "iter_jsonl", "list_readers", "parse_json_line", "read_manifest", "register_reader"]
