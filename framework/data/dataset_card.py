"""The documentation that lives with the data: a ``datacard.yaml`` (or ``DATASET.md``) in the data root.

Provenance belongs to the data, not to a run's config: a card next to the files travels with them,
and pointing ``data.root`` at other data leaves the old card behind. The documentation gate and
the data card (``audit/datacard.md``) read it.

``datacard.yaml``::

    name: digits
    description: scikit-learn's 8x8 handwritten digits, upscaled to 32x32 PNGs
    sources:                       # required by the documentation gate when require_sources is on
      - scikit-learn load_digits (UCI optical recognition of handwritten digits)
    license: CC BY 4.0
    guidelines_version: v1         # the annotation guidelines the labels follow, if any
    collected: 1998                # when or how it was collected (free text)
    notes: written by examples/make_digits.py
    merges:                        # appended by python -m framework.annotation merge, one per merge
      - {"date": "2026-12-02T19:30:00Z", "manifest": "corrections/2026-12-02/train.jsonl", "added": 12, ...}

``DATASET.md`` is free Markdown; the bullet items under a ``Sources`` heading are the sources and
the first paragraph is the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from framework.data.errors import DataError

CARD_FILES = ("datacard.yaml", "datacard.yml", "DATASET.md")
CARD_KEYS = ("name", "description", "sources", "license", "guidelines_version", "collected", "notes", "merges")
MERGES_HEADING = "## Merged corrections"


@dataclass(frozen=True)
class DatasetCard:
    """What a data set's own card says about it.

    Attributes:
        path: The card file.
        name: The data set's name, or ``""``.
        description: One paragraph on what the data is.
        sources: Where the data came from, one line each.
        license: Its licence, or ``""``.
        guidelines_version: The annotation guidelines version its labels follow, or ``""``.
        collected: When or how it was collected (free text).
        notes: Anything else worth knowing.
        merges: The reviewed corrections merged into the data, one mapping per merge (date,
            manifest, items added/relabelled/refused, agreement), oldest first.
    """

    path: Path
    name: str = ""
    description: str = ""
    sources: tuple[str, ...] = ()
    license: str = ""
    guidelines_version: str = ""
    collected: str = ""
    notes: str = ""
    merges: tuple[dict, ...] = ()


def find_dataset_card(root: Path) -> Path | None:
    """The card file in ``root`` (``datacard.yaml``, ``datacard.yml`` or ``DATASET.md``), if any."""
    root = Path(root)
    return next((root / name for name in CARD_FILES if (root / name).is_file()), None)


def read_dataset_card(root: Path) -> DatasetCard | None:
    """The card in ``root``, or ``None`` when the data has none.

    Raises:
        DataError: for a card that is not valid YAML, is not a mapping, or has an unknown key
            (naming the file, the line and the valid keys).
    """
    path = find_dataset_card(root)
    if path is None:
        return None
    from framework.data.textio import read_text

    text = read_text(path)
    return _from_markdown(path, text) if path.suffix.lower() == ".md" else _from_yaml(path, text)


def _line_of(text: str, key: str) -> int:
    match = re.search(rf"^{re.escape(key)}\s*:", text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def _from_yaml(path: Path, text: str) -> DatasetCard:
    import yaml

    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise DataError(where, f"not valid YAML ({getattr(exc, 'problem', exc)})", "Fix the card's syntax.") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}:1", f"a data card must be a mapping of keys, got {type(raw).__name__}",
                        f"Write keys such as: {', '.join(CARD_KEYS)}.")
    for key in raw:
        if key not in CARD_KEYS:
            raise DataError(f"{path}:{_line_of(text, str(key))}", f"unknown key {key!r}",
                            f"Valid keys: {', '.join(CARD_KEYS)}.")
    sources = raw.get("sources") or []
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(s, (str, int, float)) for s in sources):
        raise DataError(f"{path}:{_line_of(text, 'sources')}", "'sources' must be a list of strings",
                        "Write one line per source, e.g. sources: [\"survey photos, 2024, our team\"].")
    merges = raw.get("merges") or []
    if not isinstance(merges, list) or not all(isinstance(m, dict) for m in merges):
        raise DataError(f"{path}:{_line_of(text, 'merges')}", "'merges' must be a list of mappings",
                        "Leave the entries python -m framework.annotation merge writes as they are.")
    values = {k: "" if raw.get(k) is None else str(raw[k]).strip() for k in CARD_KEYS if k not in ("sources", "merges")}
    return DatasetCard(path=path, sources=tuple(str(s) for s in sources if str(s).strip()), merges=tuple(merges),
                       **values)


def _from_markdown(path: Path, text: str) -> DatasetCard:
    sources: list[str] = []
    description = ""
    in_sources = False
    paragraph: list[str] = []
    for line in text.splitlines():
        heading = re.match(r"^#+\s*(.*?)\s*$", line)
        if heading:
            in_sources = heading.group(1).lower().startswith("source")
            continue
        bullet = re.match(r"^\s*[-*]\s+(.*\S)", line)
        if in_sources and bullet:
            sources.append(bullet.group(1))
        if not description:
            if line.strip():
                paragraph.append(line.strip())
            elif paragraph:
                description = " ".join(paragraph)
    description = description or " ".join(paragraph)
    title = next((m.group(1) for m in re.finditer(r"^#\s+(.*\S)", text, flags=re.MULTILINE)), "")
    return DatasetCard(path=path, name=title, description=description, sources=tuple(sources))


def record_merge(root: Path, entry: dict) -> Path:
    """Append one merge's ``entry`` to the card in ``root``; returns the card's path.

    A ``datacard.yaml`` gains the entry at the end of its ``merges:`` list (one JSON line, so the
    rest of the file, comments included, is left as it was); a ``DATASET.md`` gains a bullet under
    a "Merged corrections" heading; data without a card gets a ``datacard.yaml`` holding only
    ``merges``.

    Raises:
        DataError: when ``merges:`` is not the card's last key (the entry could not be appended
            without rewriting the file), naming the file and line.
    """
    import json

    from framework.atomic import atomic_write_text
    from framework.data.textio import read_text

    path = find_dataset_card(root) or Path(root) / CARD_FILES[0]
    text = read_text(path) if path.is_file() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    line = json.dumps(entry, ensure_ascii=False, default=str)
    if path.suffix.lower() == ".md":
        summary = ", ".join(f"{k}: {v}" for k, v in entry.items() if not isinstance(v, (dict, list)))
        head = "" if MERGES_HEADING in text else f"\n{MERGES_HEADING}\n\n"
        return atomic_write_text(path, text + head + f"- {summary}\n")
    keys = [m.group(1) for m in re.finditer(r"^([A-Za-z_][\w-]*)\s*:", text, flags=re.MULTILINE)]
    if "merges" in keys and keys[-1] != "merges":
        raise DataError(f"{path}:{_line_of(text, 'merges')}", "'merges' is not the card's last key",
                        "Move the merges: list to the end of the file, so merges can be appended to it.")
    before = len(_from_yaml(path, text).merges) if text else 0
    text += ("" if "merges" in keys else "merges:\n") + f"  - {line}\n"
    if len(_from_yaml(path, text).merges) != before + 1:
        raise DataError(f"{path}:{_line_of(text, 'merges')}", "the merges: list is not indented by two spaces",
                        "Write each entry as '  - {...}' under merges:.")
    return atomic_write_text(path, text)
