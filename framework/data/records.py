"""The core data interface: records, quarantined items and the bundle a modality loads.

Every reader in :mod:`framework.data` produces :class:`Record` objects, every quality check reads
them, and every modality turns them into tensors. A record never holds decoded media: it names the
file, and the modality decodes it (once) when it builds its dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Record:
    """One item of a data set, as read from a manifest, a folder or an export.

    Attributes:
        id: Stable identifier, unique within the bundle (an explicit ``id`` field, or the
            manifest-relative media path, or ``file:line``).
        split: The split this record belongs to (``train``, ``val``, ``test`` or any other name).
        source: Where it came from, as ``path:line`` (or ``path`` for folder readers), so that
            every error and report can point at it.
        media: Resolved path of the media file (image, audio), or ``None`` for text-only records.
        label: The target: a class name, a transcript, or ``None`` when unlabeled. Preference pairs
            keep ``chosen``/``rejected`` in :attr:`fields` and leave ``label`` as ``None``.
        text: The main text of the record (an SFT conversation rendered to text, a prompt, a
            caption, a transcript), or ``None``.
        slices: Values of the slice fields (``language``, ``accent``, ``lighting``...), used by
            coverage gates and per-slice evaluation.
        fields: Every raw field of the input line, untouched, for modality-specific use.
    """

    id: str
    split: str
    source: str
    media: Path | None = None
    label: Any = None
    text: str | None = None
    slices: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Quarantined:
    """An item held out of training, with the reason, written to ``audit/quarantine.jsonl``.

    Attributes:
        source: ``path:line`` or path of the offending input.
        reason: Short machine-friendly reason (``missing_file``, ``undecodable``, ``empty_label``...).
        detail: Human-readable explanation, including what to do about it.
        record_id: The id of the record, when one could be built.
    """

    source: str
    reason: str
    detail: str = ""
    record_id: str | None = None


@dataclass
class DataBundle:
    """Everything a modality loaded for one run: records per split, plus what was quarantined.

    Attributes:
        root: The data root that relative paths were resolved against.
        splits: Records per split name; ``train`` is required for training.
        quarantine: Items refused while reading, with reasons. The audit stage writes them out and
            the gates count them; they are never silently dropped.
        classes: The ordered class names for classification-like modalities, else empty.
        annotations: Raw annotation records (several annotators per item), when the data has them;
            see :mod:`framework.annotation`.
        extras: Free room for modality-specific objects (a tokenizer's vocabulary, a prompt table).
        label_type: What these records' labels are, when it differs from the modality's
            ``Modality.label_type`` for this run (a text modality loading preference pairs sets
            ``"preference"``); ``None`` means the modality's. The audit and annotation export read
            :meth:`label_type_for`.
    """

    root: Path
    splits: dict[str, list[Record]]
    quarantine: list[Quarantined] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    label_type: str | None = None

    def label_type_for(self, modality_label_type: str) -> str:
        """The label type of this run's records: the bundle's own, else the modality's."""
        return self.label_type or modality_label_type

    def records(self, split: str | None = None) -> list[Record]:
        """Records of one split, or of every split in order when ``split`` is ``None``."""
        if split is not None:
            return list(self.splits.get(split, []))
        return [r for name in self.splits for r in self.splits[name]]

    def counts(self) -> dict[str, int]:
        """Number of records per split."""
        return {name: len(items) for name, items in self.splits.items()}
