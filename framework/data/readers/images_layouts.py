"""Hugging Face ``imagefolder``/``audiofolder`` layouts: a folder of media with a ``metadata.csv``
or ``metadata.jsonl`` whose ``file_name`` column names each file (relative to the metadata file)
and whose other columns are the item's fields.

``imagefolder`` reads the label from a ``label`` column, else the class folder a file sits in;
a ``text`` (or ``caption``) column becomes the record's text. ``audiofolder`` (see
:mod:`framework.data.readers.speech_layouts`) reads the transcript from ``transcription``,
``text`` or ``sentence``.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from framework.data.errors import DataError
from framework.data.probes import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from framework.data.readers._common import Collector, ReadOptions, map_columns
from framework.data.readers.layouts import not_a_layout
from framework.data.records import Quarantined, Record

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
FILE_NAME = "file_name"
CAPTION_KEYS = ("text", "caption")


def metadata_file(path: Path) -> Path | None:
    """The ``metadata.jsonl`` / ``metadata.csv`` directly in folder ``path``, or ``None``."""
    if not path.is_dir():
        return None
    return next((path / name for name in METADATA_FILES if (path / name).is_file()), None)


def _rows(col: Collector, meta: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if meta.suffix == ".jsonl":
        yield from col.jsonl()
        return
    reader = csv.DictReader(text + "\n" for _, text in col.text_lines())
    if not reader.fieldnames:
        return
    for row in reader:
        if None in row:
            col.errors.add(DataError(col.where(reader.line_num), f"row has more cells than the header's "
                                     f"{len(reader.fieldnames)}", "Quote cells that contain commas."))
            continue
        yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}


def first_file_name(path: Path) -> str | None:
    """The first ``file_name`` of the folder's metadata (for format detection), or ``None``."""
    meta = metadata_file(path)
    if meta is None:
        return None
    col = Collector(meta, ReadOptions(root=path, split="detect"))
    for _, row in _rows(col, meta):
        value = row.get(FILE_NAME)
        return value if isinstance(value, str) else None
    return None


def read_metadata_folder(path: Path, opts: ReadOptions, *, label_keys: tuple[str, ...],
                         text_keys: tuple[str, ...], label_from_folder: bool) -> tuple[list[Record], list[Quarantined]]:
    """Read a folder with ``metadata.csv``/``metadata.jsonl`` (the Hugging Face folder layouts).

    Args:
        path: The folder (or the metadata file itself).
        opts: Reader options; media resolve against the metadata's folder, then ``opts.root``.
        label_keys: Columns read as the label, first present wins.
        text_keys: Columns read as the record's text, first present wins.
        label_from_folder: Without a label column, use the folder a file sits in as its label.

    Raises:
        DataError: when there is no metadata file or no ``file_name`` column (naming the columns
            found), or listing each bad line.
    """
    path = Path(path)
    meta = path if path.is_file() else metadata_file(path)
    if meta is None:
        raise not_a_layout(path, "a folder with metadata.csv or metadata.jsonl (a file_name column per file)",
                           "Add the metadata file, or choose another data.format (data.format=auto picks one).")
    # data.columns names the columns of a folder made otherwise (data.columns.audio=file,
    # data.columns.text=sentence): a mapped column is read first, before the layout's usual names.
    columns = {k: v for k, v in (opts.columns or {}).items() if v}
    label_keys = (("label",) if "label" in columns else ()) + \
        (("text",) if "text" in columns and "text" in label_keys else ()) + label_keys
    text_keys = (("text",) if "text" in columns else ()) + text_keys
    media_key = next((columns[k] for k in ("image", "audio") if k in columns), FILE_NAME)
    col = Collector(meta, opts)
    for line, raw in _rows(col, meta):
        with col.line(line):
            row = map_columns(raw, columns)
            name = row.get(media_key)
            if not isinstance(name, str) or not name:
                raise DataError(col.where(line), f"no {media_key!r} (columns present: {sorted(raw)})",
                                f"Name each file in a {FILE_NAME!r} column, relative to {meta.name} "
                                f"(the Hugging Face imagefolder/audiofolder layout).")
            label = next((row[k] for k in label_keys if row.get(k) not in (None, "")), None)
            parent = PurePosixPath(name).parent.name
            if label is None and label_from_folder and parent:
                label = parent
            text = next((row[k] for k in text_keys if isinstance(row.get(k), str)), None)
            fields = dict(raw)
            # Relative to the metadata file (a missing file is then named where it should be).
            col.add(line, fields, media=str(meta.parent / name), label=label, text=text)
    return col.result()


def read_imagefolder(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a Hugging Face ``imagefolder``: images plus ``metadata.csv``/``metadata.jsonl``.

    The label is the ``label`` column, else the class folder a file sits in (``cat/1.jpg``);
    ``text``/``caption`` becomes :attr:`Record.text`; other columns are kept as fields (slices).
    """
    return read_metadata_folder(path, opts, label_keys=("label",), text_keys=CAPTION_KEYS, label_from_folder=True)


def is_imagefolder(path: Path) -> bool:
    """Detector: a folder whose metadata's first ``file_name`` is an image."""
    name = first_file_name(path)
    return name is not None and PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def is_audio_metadata_folder(path: Path) -> bool:
    """Detector: a folder whose metadata's first ``file_name`` is audio."""
    name = first_file_name(path)
    return name is not None and PurePosixPath(name).suffix.lower() in AUDIO_EXTENSIONS


def image_layout_readers() -> list[tuple[str, Any, Any]]:
    """``(format, reader, detector)`` of the image layouts, for the built-in registry."""
    return [("imagefolder", read_imagefolder, is_imagefolder)]
