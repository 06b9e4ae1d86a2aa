"""Named extra evaluation sets: an out-of-distribution set, an edge-case set, any number of them.

``evaluation.sets={ood: ood.jsonl, edge: edge_cases/}`` names manifests or folders (relative paths
resolve against ``data.root``) read with the run's readers, slices and ``data.allow_outside_root``.
The evaluate stage scores each with the modality's own ``evaluate``, exactly as it scores ``val``
and ``test``, so each set gets the modality's metrics, per-class and per-slice tables and figures.
Its metrics are reported as ``<name>/<metric>`` (``ood/accuracy``; ``success: {ood/accuracy:
">=0.8"}``), and ``summary.json`` lists the sets under ``sets``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.config import EvaluationConfig
    from framework.data.config import DataConfig

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# Names that already mean something as a split or a metric prefix.
RESERVED = frozenset({"train", "val", "test", "unlabeled", "retention", "retention_start", "baseline", "probe",
                      "robust", "hallucination", "language_id", "sets"})


@dataclass(frozen=True)
class EvalSet:
    """One extra set: its name (the split its records get), where it came from, how many items."""

    name: str
    source: Path
    items: int


def read_set(path: str, fmt: str, data: DataBundle, data_cfg: "DataConfig", split: str, what: str) -> tuple[Path, list[Record]]:
    """Read a manifest or folder into labeled records of ``split``.

    A relative ``path`` resolves against ``data.root``; a set outside it resolves its media paths
    against its own folder. Quarantined and unlabeled items are logged and left out.

    Args:
        path: The manifest or folder, as configured.
        fmt: The reader (``auto`` or a registered format name).
        data: The run's bundle (its ``root``).
        data_cfg: The ``data:`` node (slices and ``allow_outside_root`` apply to the set too).
        split: The split name the records get.
        what: The config key, for messages (``evaluation.sets.ood``).

    Raises:
        FrameworkError: when the set has no labeled item to score.
    """
    from framework.data.readers import read_manifest

    source = Path(path)
    source = source if source.is_absolute() else Path(data.root) / source
    root = Path(data.root) if source.absolute().is_relative_to(Path(data.root).absolute()) else \
        (source if source.is_dir() else source.parent)
    records, quarantined = read_manifest(source, root=root, split=split, format=fmt,
                                         slices=tuple(data_cfg.slices), allow_outside_root=data_cfg.allow_outside_root)
    for item in quarantined:
        log.warning("%s: skipped %s (%s): %s", what, item.source, item.reason, item.detail)
    unlabeled = sum(r.label is None for r in records)
    if unlabeled:
        log.warning("%s: %d unlabeled item(s) in %s are not scored", what, unlabeled, source)
    records = [r for r in records if r.label is not None]
    if not records:
        raise FrameworkError(f"{what}={path!r}: {source} has no labeled items ({len(quarantined)} quarantined); "
                             f"point it at a labeled manifest or folder")
    return source, records


def load_sets(evaluation: "EvaluationConfig", data: DataBundle, data_cfg: "DataConfig") -> list[EvalSet]:
    """Read every ``evaluation.sets`` entry into ``data`` as a split of its own name.

    Raises:
        FrameworkError: for a name that is not a plain identifier, one that is already a split or
            a metric prefix, or a set without labeled items.
    """
    out = []
    for name, path in (evaluation.sets or {}).items():
        name = str(name)
        if not _NAME.match(name) or name in RESERVED or name in evaluation.splits:
            raise FrameworkError(
                f"evaluation.sets.{name}: a set needs its own name (letters, digits, '_' or '-', starting with a "
                f"letter) that is not a split or a metric prefix ({', '.join(sorted(RESERVED))}); rename it, "
                f"e.g. evaluation.sets={{ood: {path}}}")
        source, records = read_set(str(path), evaluation.sets_format, data, data_cfg, split=name,
                                   what=f"evaluation.sets.{name}")
        data.splits[name] = records
        out.append(EvalSet(name, source, len(records)))
    return out
