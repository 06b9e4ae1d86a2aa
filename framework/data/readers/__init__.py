"""Readers: modalities name a format (``"nemo_audio"``) instead of importing a function.

Built-in formats: ``jsonl``, ``csv``, ``image_folder``, ``chat``, ``preference``, ``nemo_audio``,
``label_studio``, ``hf`` (Hugging Face datasets), and the image and speech layouts (``imagefolder``,
``common_voice``, ``kaldi``, ``librispeech``, ``audio_text_folder``, ``audiofolder``, ``speech``);
``auto`` picks one from the path (see :meth:`ReaderRegistry.detect`). A plugin
adds its own in the ``framework_register_readers`` hook, optionally with a detector so ``auto``
finds it::

    @hookimpl
    def framework_register_readers(registry):
        registry.add("parquet_table", read_parquet, detect=lambda p: p.suffix == ".parquet")

A reader is ``reader(path, opts) -> (records, quarantined)`` with
:class:`~framework.data.readers._common.ReadOptions`. The functions below take the registry to
use (``readers=ctx.plugins.readers`` in a run); without one they use :func:`installed_readers`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

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
from framework.data.readers.registry import Detector, Reader, ReaderRegistry, builtin_readers
from framework.data.records import Quarantined, Record
from framework.data.shards import is_shard_spec

# Formats added through the deprecated register_reader: process-wide, consulted before any
# registry so that code written against it keeps its behaviour for one release.
_LEGACY = ReaderRegistry()


def register_reader(name: str, reader: Reader, *, detect: Detector | None = None, replace: bool = False) -> None:
    """Deprecated: register formats in the ``framework_register_readers(registry)`` hook instead.

    Makes ``reader`` available as ``data.format=name`` in every registry of this process, ahead of
    the formats registered through the hook. Kept working for one release.

    Args:
        name: The format name users write in config.
        reader: ``reader(path, opts) -> (records, quarantined)``.
        detect: Optional ``detect(path) -> bool`` so that ``format=auto`` chooses this reader.
        replace: Allow replacing an existing reader of that name.

    Raises:
        ValueError: when ``name`` is taken and ``replace`` is false.
    """
    warnings.warn("framework.register_reader is deprecated: register the format in the "
                  "framework_register_readers(registry) hook with registry.add(name, reader, detect=...) "
                  "(docs/plugins.md, Migrating)", DeprecationWarning, stacklevel=2)
    if name in builtin_readers() and not replace:
        raise ValueError(f"a reader named {name!r} is already registered (built-in); pass replace=True to override it")
    _LEGACY.add(name, reader, detect=detect, replace=replace)


def installed_readers() -> ReaderRegistry:
    """The registry of this process's installed plugins: the built-in formats plus every plugin's
    ``framework_register_readers``, built with the plugin manager on first use."""
    from framework.plugins import default_plugins  # the plugin manager owns the registry

    return default_plugins().readers


def _registry(readers: ReaderRegistry | None) -> ReaderRegistry:
    registry = readers if readers is not None else installed_readers()
    if not len(_LEGACY):
        return registry
    merged = registry.copy()
    for entry in _LEGACY.entries():
        merged.add(entry.name, entry.reader, detect=entry.detect, replace=True)
    return merged


def list_readers(readers: ReaderRegistry | None = None) -> list[str]:
    """Names of every registered format (of ``readers``, default :func:`installed_readers`)."""
    return _registry(readers).names()


def get_reader(name: str, readers: ReaderRegistry | None = None) -> Reader:
    """The reader registered as ``name`` (in ``readers``, default :func:`installed_readers`).

    Raises:
        ValueError: naming the known formats when ``name`` is unknown.
    """
    return _registry(readers).get(name)


def detect_format(path: Path, readers: ReaderRegistry | None = None) -> str:
    """Choose a format from the path: registered detectors, then folder, extension and the keys
    of the first JSON line (see :meth:`ReaderRegistry.detect`).

    Raises:
        DataError: when no rule matches, naming the formats to choose from.
    """
    return _registry(readers).detect(Path(path))


def read_manifest(
    path: Path | str,
    *,
    root: Path | str,
    split: str,
    format: str = "auto",
    slices: Sequence[str] = (),
    allow_outside_root: bool = False,
    probe: Probe | None = None,
    readers: ReaderRegistry | None = None,
    columns: Mapping[str, str] | None = None,
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
        readers: The registry to find ``format`` in; default :func:`installed_readers`.
        columns: ``data.columns`` (record field -> input column), for readers that rename.

    Returns:
        ``(records, quarantined)``; missing or undecodable media are in ``quarantined``.

    Raises:
        DataError: for a malformed line (naming ``file:line``), a path escaping ``root``, or a
            missing manifest.
    """
    path = Path(path)
    if not path.exists() and not is_shard_spec(path):  # a brace range of shards names no single file
        from framework.data.readers.layouts import describe

        raise DataError(str(path), f"file or folder not found ({describe(path)})",
                        "Check data.root and the split paths (docs/data.md lists the layouts read).")
    registry = _registry(readers)
    name = registry.detect(path) if format == "auto" else format
    opts = ReadOptions(root=Path(root), split=split, slices=tuple(slices),
                       allow_outside_root=allow_outside_root, probe=probe,
                       columns={k: str(v) for k, v in (columns or {}).items() if v})
    return registry.get(name)(path, opts)


__all__ = ["Collector", "Detector", "LineErrors", "MAX_LINE_ERRORS", "ReadOptions", "Reader", "ReaderRegistry",
           "builtin_readers", "detect_format", "get_field", "get_reader", "installed_readers", "iter_jsonl", "list_readers",
           "parse_json_line", "read_manifest", "register_reader"]
