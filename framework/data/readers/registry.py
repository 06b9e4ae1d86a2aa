"""The reader registry: format name -> reader, and the detectors ``format=auto`` tries.

The core builds one registry per plugin manager (:attr:`framework.plugins.Plugins.readers`): the
built-in formats, then every plugin's :func:`~framework.hookspecs.framework_register_readers`,
which receives the registry and calls :meth:`ReaderRegistry.add`. Once every plugin has
registered, the core freezes it, so a format cannot appear or change in the middle of a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from framework.data.errors import DataError
from framework.data.readers._common import ReadOptions
from framework.data.records import Quarantined, Record

Reader = Callable[[Path, ReadOptions], tuple[list[Record], list[Quarantined]]]
"""``reader(path, opts) -> (records, quarantined)``: reads one manifest, folder or export."""

Detector = Callable[[Path], bool]
"""``detect(path) -> bool``: whether ``format=auto`` should read ``path`` with this reader."""

BUILTIN = "built-in"


@dataclass(frozen=True)
class ReaderEntry:
    """One registered format.

    Attributes:
        name: The format name users write as ``data.format``.
        reader: The function that reads it.
        detect: Its detector for ``format=auto``, or ``None``.
        origin: Where it came from, for messages: ``"built-in"`` or the reader's ``module.function``.
    """

    name: str
    reader: Reader
    detect: Detector | None = None
    origin: str = BUILTIN


def _origin(reader: Reader) -> str:
    return f"{getattr(reader, '__module__', '?')}.{getattr(reader, '__qualname__', type(reader).__qualname__)}"


class ReaderRegistry:
    """Format name -> reader, passed to ``framework_register_readers`` and read by ``load_bundle``.

    A plugin registers its formats in the hook::

        @hookimpl
        def framework_register_readers(registry: ReaderRegistry) -> None:
            registry.add("points_jsonl", read_points, detect=lambda p: p.name.endswith(".points.jsonl"))

    Detectors are tried most recent first, before the built-in rules of :meth:`detect`.
    """

    def __init__(self, entries: Iterable[ReaderEntry] = ()) -> None:
        self._entries: dict[str, ReaderEntry] = {}
        self._frozen = False
        for entry in entries:
            self._entries[entry.name] = entry

    def add(self, name: str, reader: Reader, *, detect: Detector | None = None, replace: bool = False) -> None:
        """Make ``reader`` available as ``data.format=name``.

        Called by plugins inside ``framework_register_readers``.

        Args:
            name: The format name users write in config.
            reader: ``reader(path, opts) -> (records, quarantined)``.
            detect: Optional ``detect(path) -> bool`` so that ``format=auto`` chooses this reader.
            replace: Replace a format of that name (a built-in one included) instead of refusing.

        Raises:
            ValueError: when ``name`` is taken and ``replace`` is false (naming who holds it), or
                when the registry is frozen (the core froze it after every plugin registered).
        """
        if self._frozen:
            raise ValueError(f"cannot add reader {name!r}: the reader registry is complete once every plugin's "
                             f"framework_register_readers hook ran; register it in that hook")
        if not name or not isinstance(name, str):
            raise ValueError(f"a reader's format name must be a non-empty string, got {name!r}")
        if not callable(reader):
            raise ValueError(f"reader {name!r} must be callable as reader(path, opts), got {reader!r}")
        held = self._entries.get(name)
        if held is not None and not replace:
            raise ValueError(f"a reader named {name!r} is already registered ({held.origin}); choose another "
                             f"name, or pass replace=True to override it")
        self._entries.pop(name, None)  # a replaced format's detector goes to the front too
        self._entries[name] = ReaderEntry(name, reader, detect, _origin(reader))

    def freeze(self) -> None:
        """Refuse further :meth:`add` calls. Called by the core once every plugin registered."""
        self._frozen = True

    @property
    def frozen(self) -> bool:
        """Whether the core has frozen the registry."""
        return self._frozen

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ReaderRegistry({self.names()}{', frozen' if self._frozen else ''})"

    def entries(self) -> list[ReaderEntry]:
        """Every registered format, in the order it was added."""
        return list(self._entries.values())

    def names(self) -> list[str]:
        """Every registered format name, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Reader:
        """The reader registered as ``name``.

        Raises:
            ValueError: naming the known formats when ``name`` is unknown.
        """
        entry = self._entries.get(name)
        if entry is None:
            raise ValueError(f"unknown data format {name!r}; known formats: {', '.join(self.names())} (or 'auto')")
        return entry.reader

    def detectors(self) -> list[tuple[str, Detector]]:
        """``(name, detect)`` of every format with a detector, most recently added first."""
        return [(e.name, e.detect) for e in reversed(self._entries.values()) if e.detect is not None]

    def detect(self, path: Path) -> str:
        """The format to read ``path`` with: registered detectors first, then folder, extension
        and the keys of the first JSON line.

        Raises:
            DataError: when no rule matches, naming the formats to choose from.
        """
        path = Path(path)
        for name, detect in self.detectors():
            if detect(path):
                return name
        found = builtin_format(path)
        if found is None:
            from framework.data.readers.layouts import describe

            raise DataError(str(path), f"cannot tell the data format from the path ({describe(path)})",
                            f"Set data.format to one of: {', '.join(self.names())} (docs/data.md lists the layouts).")
        return found

    def copy(self) -> ReaderRegistry:
        """An unfrozen copy holding the same entries."""
        return ReaderRegistry(self._entries.values())


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


def builtin_format(path: Path) -> str | None:
    """The built-in format for ``path`` by folder, extension and first JSON line; ``None`` if none fits."""
    from framework.data.readers.chat_layouts import detect_layout, layout_kind
    from framework.data.readers.hf import is_hf_source

    if is_hf_source(path):
        return "hf"
    if path.is_dir():
        return "image_folder"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "label_studio"
    if suffix in {".jsonl", ".ndjson"}:
        first = _first_object(path) or {}
        kind = layout_kind(detect_layout(first))  # TRL, ShareGPT and Alpaca chats, preference pairs
        if kind is not None:
            return kind
        if "audio_filepath" in first:
            return "nemo_audio"
        return "jsonl"
    return None


def builtin_readers() -> ReaderRegistry:
    """A new, unfrozen registry holding the built-in formats: ``jsonl``, ``csv``, ``image_folder``,
    ``chat``, ``preference``, ``nemo_audio``, ``label_studio``, ``hf`` (Hugging Face datasets) and ``shards``
    (WebDataset-style tar shards, :mod:`framework.data.shards`), plus the
    image and speech layouts (``imagefolder``, ``common_voice``, ``kaldi``, ``librispeech``,
    ``audio_text_folder``, ``audiofolder``) with their detectors."""
    from framework.data.readers.audio import read_nemo_audio
    from framework.data.readers.folder import read_image_folder
    from framework.data.readers.hf import read_hf
    from framework.data.readers.label_studio import read_label_studio
    from framework.data.readers.manifest import read_csv, read_jsonl
    from framework.data.readers.text import read_chat, read_preference

    readers: dict[str, Reader] = {
        "jsonl": read_jsonl,
        "csv": read_csv,
        "image_folder": read_image_folder,
        "chat": read_chat,
        "preference": read_preference,
        "nemo_audio": read_nemo_audio,
        "label_studio": read_label_studio,
        "hf": read_hf,
    }
    from framework.data.readers.images_layouts import image_layout_readers
    from framework.data.readers.speech_layouts import speech_layout_readers

    from framework.data.shards import detect_shards, read_shards

    entries = [ReaderEntry(name, reader) for name, reader in readers.items()]
    entries.append(ReaderEntry("shards", read_shards, detect_shards))
    entries += [ReaderEntry(name, reader, detect) for name, reader, detect in (*image_layout_readers(),
                                                                              *speech_layout_readers())]
    return ReaderRegistry(entries)
