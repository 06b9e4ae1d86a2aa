"""Several sources for one split, with sampling weights, each keeping its provenance.

``data.train`` may list several sources::

    data:
      train:
        - {path: chats.jsonl, weight: 3}     # three parts in four of each epoch come from here
        - {path: alpaca.jsonl, weight: 1, name: alpaca-cleaned}
        - hf:owner/name                      # a hub dataset (weight 1)

(on the command line ``data.train=[a.jsonl,b.jsonl]`` or
``data.train=[{path:a.jsonl,weight:3},{path:b.jsonl,weight:1}]``). Every source is read with the
same readers, once: the audit sees each item once (so the cleanliness gate catches the same item
in two sources as a duplicate), and the data card lists each source with its path, format,
weight and counts (``DataBundle.extras["mixture"]``). The training stage then trains on
:func:`training_view`: per epoch, source *i* contributes ``weight_i / sum(weights)`` of the
epoch's items (whole copies of the source, plus a seeded sample of it for the remainder). With
``source`` in ``data.slices`` each record's source name is also a slice.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from framework.data.errors import DataError
from framework.data.records import DataBundle, Quarantined, Record

log = logging.getLogger(__name__)

MIXTURE_KEY = "mixture"  # DataBundle.extras key of the sources' provenance


@dataclass(frozen=True)
class Source:
    """One entry of a split's source list.

    Attributes:
        path: A path under ``data.root``, or ``hf:owner/name[:split]``.
        weight: Relative sampling weight per epoch (> 0); ``None`` when not given. When no source
            of a split has a weight, the sources are simply concatenated; otherwise a missing
            weight counts as 1.
        name: The name the data card and the ``source`` slice use (default: the path).
    """

    path: str
    weight: float | None = None
    name: str = ""

    @property
    def label(self) -> str:
        """The source's name in reports."""
        return self.name or self.path


def _plain(value: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value


def parse_sources(value: Any, key: str = "data.train") -> list[Source] | None:
    """The sources a ``data.<split>`` value lists; ``None`` for a single path (read as before).

    Raises:
        DataError: naming ``key`` for an entry that is not a path or ``{path, weight, name}``.
    """
    value = _plain(value)
    if isinstance(value, str):
        from framework.data.readers.hf import is_hub_name

        return [Source(value)] if is_hub_name(value) else None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list) or not value:
        raise DataError(key, f"expected a path or a list of sources, got {value!r}",
                        f"Write {key}=train.jsonl or {key}=[a.jsonl,b.jsonl].")
    sources = [_source(entry, f"{key}[{i}]") for i, entry in enumerate(value)]
    names = [s.label for s in sources]
    if len(set(names)) != len(names):
        raise DataError(key, f"two sources have the same name ({names})", "Give each a distinct 'name'.")
    return sources


def _source(entry: Any, where: str) -> Source:
    if isinstance(entry, str) and entry:
        return Source(entry)
    if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
        unknown = set(entry) - {"path", "weight", "name"}
        weight = entry.get("weight")
        bad_weight = weight is not None and (not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0)
        if unknown or bad_weight:
            raise DataError(where, f"bad source {entry!r}" + (f" (unknown keys {sorted(unknown)})" if unknown else ""),
                            "Write {path: file, weight: positive number, name: optional}.")
        return Source(entry["path"], None if weight is None else float(weight), str(entry.get("name") or ""))
    raise DataError(where, f"bad source {entry!r}", "Write a path, or {path: file, weight: 2}.")


def read_sources(sources: Sequence[Source], *, split: str, read: Any, slices: Sequence[str] = ()
                 ) -> tuple[list[Record], list[Quarantined], list[dict[str, Any]]]:
    """Read each source with ``read(source) -> (records, quarantined, format)``.

    Returns:
        ``(records, quarantined, provenance)``: every source's records in order (with a ``source``
        slice when ``source`` is in ``slices``), and one provenance entry per source.

    Raises:
        DataError: when two sources give a record the same id.
    """
    records: list[Record] = []
    quarantined: list[Quarantined] = []
    provenance: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for source in sources:
        got, held, fmt = read(source)
        for record in got:
            if record.id in seen:
                raise DataError(record.source, f"record id {record.id!r} is also in source {seen[record.id]!r}",
                                "Give the sources' items distinct 'id' values (or drop the repeated item).")
            seen[record.id] = source.label
        if "source" in slices:
            got = [dataclasses.replace(r, slices={**r.slices, "source": source.label}) for r in got]
        records += got
        quarantined += held
        provenance.append({"name": source.label, "path": source.path, "format": fmt, "weight": source.weight,
                           "split": split, "records": len(got), "quarantined": len(held),
                           "ids": [r.id for r in got]})
        log.info("data.%s source %s (%s, weight %s): %d records, %d quarantined",
                 split, source.label, fmt, source.weight, len(got), len(held))
    return records, quarantined, provenance


def mixture_of(bundle: DataBundle) -> list[dict[str, Any]]:
    """The provenance entries ``load_bundle`` recorded for a multi-source split ([] when none)."""
    return list(bundle.extras.get(MIXTURE_KEY, []))


def weighted_records(bundle: DataBundle, seed: int, split: str = "train") -> list[Record]:
    """The records one epoch of ``split`` trains on, following the sources' weights.

    The epoch keeps the split's size ``N``; source *i* (``n_i`` items, weight ``w_i``) contributes
    ``round(N * w_i / sum(w))`` items: whole copies of the source, then a sample drawn with a
    ``seed``-seeded generator. Without several weighted sources the split is returned unchanged.
    """
    entries = [e for e in mixture_of(bundle) if e["split"] == split]
    records = bundle.records(split)
    if not any(e["weight"] is not None for e in entries):
        return records
    by_id = {r.id: r for r in records}
    weight = {e["name"]: 1.0 if e["weight"] is None else e["weight"] for e in entries}
    total, weights = len(records), sum(weight.values())
    rng = random.Random(seed)
    out: list[Record] = []
    for entry in entries:
        items = [by_id[i] for i in entry["ids"] if i in by_id]
        if not items:
            continue
        want = round(total * weight[entry["name"]] / weights)
        copies, rest = divmod(want, len(items))
        out += items * copies + rng.sample(items, rest)
    return out


def training_view(bundle: DataBundle, seed: int) -> DataBundle:
    """``bundle`` with its ``train`` split replaced by :func:`weighted_records` (the same object
    when there is nothing to weigh). Called by the training stage; the audit reads the bundle itself."""
    mixed = weighted_records(bundle, seed)
    if mixed == bundle.splits.get("train", []):  # nothing weighed: the same records (compared by identity first)
        return bundle
    return dataclasses.replace(bundle, splits={**bundle.splits, "train": mixed})


def describe(value: Any) -> Any:
    """A ``data.<split>`` value for ``audit.json`` and the data card: the path, or the sources' paths."""
    value = _plain(value)
    sources = parse_sources(value) if value else None
    if not sources:
        return value
    return ", ".join(s.path if s.weight is None else f"{s.path} (weight {s.weight:g})" for s in sources)


def source_lines(bundle: DataBundle) -> list[str]:
    """Markdown bullet lines, one per source of a multi-source split, for the data card."""
    return [f"- {e['split']} source `{e['name']}`: `{e['path']}`, format {e['format']}, "
            f"weight {'(none)' if e['weight'] is None else format(e['weight'], 'g')}, "
            f"{e['records']} records, {e['quarantined']} quarantined" for e in mixture_of(bundle)]


__all__ = ["MIXTURE_KEY", "Source", "describe", "mixture_of", "parse_sources", "read_sources", "source_lines",
           "training_view", "weighted_records"]
