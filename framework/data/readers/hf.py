"""Hugging Face ``datasets`` as a source for every modality, through the same records and audit.

``data.train`` may name a folder written by ``Dataset.save_to_disk`` (or a ``DatasetDict``'s: the
split of the same name is read, ``val`` being ``validation``/``val``/``valid``/``dev``), a
``.parquet`` or ``.arrow`` file, or a hub dataset as ``hf:owner/name`` (``hf:owner/name:split``)
when the machine can reach the hub. Each row becomes one :class:`~framework.data.records.Record`:

* rows in a chat or preference layout (``messages``, ``conversations``, ``instruction``/``output``,
  ``prompt``/``completion``, ``prompt``/``chosen``/``rejected``) are read as the text readers read
  JSONL lines;
* otherwise ``text``, ``label``, ``audio``/``image`` columns (renamed with ``data.columns``, e.g.
  ``data.columns.text=sentence``); an ``Audio`` or ``Image`` feature's encoded bytes are written
  once to a content-addressed cache folder (``$FRAMEWORK_CACHE``, default
  ``~/.cache/framework``) and the record names that file, so the modalities decode it with their
  own decoding (16 kHz mono audio, colour modes) and the probes, fingerprints and quarantine see
  the same bytes as for files on disk; a ``ClassLabel`` label is kept as its class name. Without a
  ``label`` column, an audio row's text is its label (the transcript), as in a NeMo manifest.

A record's source is ``<dataset>:<row>``; its id the row's ``id`` column, else ``<dataset>:<row>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from framework.data.errors import DataError
from framework.data.readers._common import Collector, ReadOptions, map_columns
from framework.data.readers.chat_layouts import detect_layout, layout_kind
from framework.data.records import Quarantined, Record

if TYPE_CHECKING:
    import datasets

HUB_PREFIX = "hf:"
#: Columns read when ``data.columns`` does not name them, first present wins.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "transcription", "transcript", "caption"),
    "label": ("label", "labels"),
    "audio": ("audio",),
    "image": ("image", "img"),
}
SPLIT_NAMES = {"train": ("train",), "val": ("validation", "val", "valid", "dev"), "test": ("test",)}
_DISK_MARKERS = ("dataset_info.json", "state.json")


def is_hf_source(path: Path) -> bool:
    """Whether ``path`` is a ``save_to_disk`` folder (a ``Dataset`` or ``DatasetDict``), or a
    ``.parquet``/``.arrow`` file. Used by ``format=auto`` and by the text readers."""
    path = Path(path)
    if path.is_dir():
        return (path / "dataset_dict.json").is_file() or all((path / m).is_file() for m in _DISK_MARKERS)
    return path.suffix.lower() in {".parquet", ".arrow"} and path.is_file()


def is_hub_name(value: Any) -> bool:
    """Whether a ``data.train``/``val``/``test`` value names a hub dataset (``hf:owner/name[:split]``)."""
    return isinstance(value, str) and value.startswith(HUB_PREFIX)


def cache_dir() -> Path:
    """Where decoded-feature bytes are written: ``$FRAMEWORK_CACHE/hf_media`` (default ``~/.cache/framework``)."""
    return Path(os.environ.get("FRAMEWORK_CACHE") or Path.home() / ".cache" / "framework") / "hf_media"


def _require_datasets() -> Any:
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency, but say how to get it
        raise DataError("data", "reading a Hugging Face dataset needs the 'datasets' package",
                        "pip install datasets (it is in the project's dependencies)") from None
    return datasets


def open_dataset(path: Path, split: str) -> "datasets.Dataset":
    """The ``datasets.Dataset`` at ``path`` for ``split`` (a ``DatasetDict`` folder's matching split).

    Raises:
        DataError: for a ``DatasetDict`` without that split, naming the splits it has and the fix.
    """
    datasets = _require_datasets()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".arrow":
        return datasets.Dataset.from_file(str(path))
    if suffix == ".parquet":
        return datasets.load_dataset("parquet", data_files=str(path), split="train",
                                     cache_dir=str(cache_dir().parent / "hf_datasets"))
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.Dataset):
        return loaded
    return _pick_split(loaded, split, str(path))


def _pick_split(loaded: Mapping[str, Any], split: str, where: str) -> Any:
    for name in SPLIT_NAMES.get(split, (split,)):
        if name in loaded:
            return loaded[name]
    raise DataError(where, f"this DatasetDict has splits {sorted(loaded)}, none of them is data.{split}",
                    f"Name the split's folder, e.g. data.{split}={Path(where).name}/{sorted(loaded)[0]}, "
                    f"or set data.{split}=null")


def open_hub(name: str, split: str) -> "datasets.Dataset":
    """A hub dataset ``hf:owner/name[:split]`` (downloaded by ``datasets``; needs the network).

    Raises:
        DataError: when it cannot be loaded, with the reason.
    """
    datasets = _require_datasets()
    repo, _, chosen = name[len(HUB_PREFIX):].partition(":")
    try:
        if chosen:
            return datasets.load_dataset(repo, split=chosen)
        return _pick_split(datasets.load_dataset(repo), split, name)
    except DataError:
        raise
    except Exception as exc:  # the hub's errors vary by cause (network, gated, missing)
        raise DataError(name, f"cannot load the hub dataset {repo!r}: {exc}",
                        "Check the name and the network, or save_to_disk it and point data.train at the folder") from None


def read_hf(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read a ``save_to_disk`` folder or a parquet/arrow file (the ``hf`` format); see the module docstring."""
    return read_dataset(open_dataset(path, opts.split), Path(path), opts)


def read_dataset(ds: "datasets.Dataset", name: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Records of an opened ``datasets.Dataset``; ``name`` is the path records' sources start with.

    Raises:
        DataError: listing every bad row (``<dataset>:<row>``).
    """
    from framework.data.readers.text import add_chat, add_preference

    datasets = _require_datasets()
    ds, media = _undecoded(ds, datasets)
    classes = {col: feat.names for col, feat in ds.features.items() if isinstance(feat, datasets.ClassLabel)}
    col = Collector(name, opts)
    cached = Collector(name, dataclasses.replace(opts, allow_outside_root=True))  # our own cache files
    cached.errors, cached.records, cached.quarantined, cached._ids = col.errors, col.records, col.quarantined, col._ids
    for index, row in _rows(ds):
        with col.line(index):
            row = {k: (classes[k][v] if k in classes and isinstance(v, int) and v >= 0 else v) for k, v in row.items()}
            row = map_columns(row, opts.columns)
            kind = layout_kind(detect_layout(row)) if "text" not in opts.columns else None
            if kind == "chat":
                add_chat(col, index, _plain(row, media))
            elif kind == "preference":
                add_preference(col, index, _plain(row, media))
            else:
                _add_row(col, cached, index, row, media, opts.columns)
    return col.result()


def _rows(ds: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, row in enumerate(ds):
        yield index, dict(row)


def _undecoded(ds: Any, datasets: Any) -> tuple[Any, dict[str, str]]:
    """``ds`` with every Audio/Image column cast to ``decode=False`` (rows then hold ``{"bytes",
    "path"}``), and ``{column: "audio"|"image"}``."""
    media: dict[str, str] = {}
    for column, feature in ds.features.items():
        if isinstance(feature, datasets.Audio):
            ds, media[column] = ds.cast_column(column, datasets.Audio(decode=False)), "audio"
        elif isinstance(feature, datasets.Image):
            ds, media[column] = ds.cast_column(column, datasets.Image(decode=False)), "image"
    return ds, media


def _plain(row: Mapping[str, Any], media: Mapping[str, str]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in media}


def _column(row: Mapping[str, Any], role: str, columns: Mapping[str, str]) -> str | None:
    if role in columns:
        return role if role in row else None
    return next((c for c in DEFAULT_COLUMNS[role] if c in row), None)


def _add_row(col: Collector, cached: Collector, index: int, row: dict[str, Any], media: Mapping[str, str],
             columns: Mapping[str, str]) -> None:
    where = col.where(index)
    for role in ("text", "label", "audio", "image"):
        if role in columns and columns[role] not in row:
            raise DataError(where, f"data.columns.{role}={columns[role]} is not a column (columns: {sorted(row)})",
                            f"Set data.columns.{role} to one of the columns.")
    text_col, label_col = _column(row, "text", columns), _column(row, "label", columns)
    media_col = _column(row, "audio", columns) or _column(row, "image", columns)
    if media_col is None and text_col is None:
        raise DataError(where, f"no text, audio or image column among {sorted(row)}",
                        "Name one with data.columns (e.g. data.columns.text=sentence data.columns.image=img).")
    # map_columns copied a mapped column under its role's name: the feature kind is the source column's.
    kind = media.get(columns.get("audio" if media_col == _column(row, "audio", columns) else "image", media_col),
                     media.get(media_col or ""))
    text = row.get(text_col) if text_col else None
    label = row.get(label_col) if label_col else (text if kind == "audio" else None)
    fields = {k: v for k, v in row.items() if k not in media and k != media_col}
    if text is not None:
        fields["text"] = text
    if media_col is None:
        col.add(index, fields, label=label, text=text, record_id=row.get("id"))
        return
    path, collector = _media_file(row[media_col], kind, col, cached, where)
    fields[media_col] = path
    # Cached files are named by content, so two rows with the same bytes share one: the row names the record.
    record_id = row.get("id", f"{col._file_id}:{index}" if collector is cached else None)
    collector.add(index, fields, media=path, label=label, text=text, record_id=record_id, where=where)


def _media_file(value: Any, kind: str | None, col: Collector, cached: Collector, where: str) -> tuple[str, Collector]:
    """The file a media cell names: a path string as written (held to the data root), or an
    Audio/Image feature's bytes written to the cache (named by their hash, so runs share them)."""
    if isinstance(value, str):
        return value, col
    if not isinstance(value, Mapping):
        raise DataError(where, f"media cell must be a path or an Audio/Image value, got {type(value).__name__}",
                        "Point data.columns.audio/image at the media column.")
    data, original = value.get("bytes"), value.get("path")
    if data is None:
        if not original:
            raise DataError(where, f"{kind or 'media'} cell has neither bytes nor a path", "Rebuild the dataset with the media.")
        return str(original), col
    suffix = Path(original).suffix if original else (".wav" if kind == "audio" else ".png")
    target = cache_dir() / hashlib.sha256(data).hexdigest()[:32]
    target = target.with_suffix(suffix.lower() or ".bin")
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return str(target), cached


__all__ = ["DEFAULT_COLUMNS", "HUB_PREFIX", "cache_dir", "is_hf_source", "is_hub_name", "open_dataset", "open_hub",
           "read_dataset", "read_hf"]
