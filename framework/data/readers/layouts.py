"""Where users keep their data: what a folder holds, which split paths a layout uses, and the
messages that say how to point the run at it.

Called by :func:`framework.data.load_bundle` before reading: :func:`resolve_splits` maps split
paths left at the modality's defaults onto the layout that is there (``dev.tsv`` for ``val``,
a missing default ``test`` skipped with a warning), and :func:`missing_split_error` explains a
split that is still missing, naming what was found and the override that fixes it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from framework.data.errors import DataError
from framework.data.probes import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_COMMAND = "python -m framework.data split"
"""The command that makes train/val/test from one source (named in messages)."""

# Conventional names of each split, as the ecosystem writes them (Hugging Face datasets infers
# splits from the same words); a split left at its default path may be found under one of them.
SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_SPLIT_SUFFIXES = ("", ".tsv", ".jsonl", ".csv")
_SCAN_LIMIT = 5000  # files looked at when describing or detecting a folder


def walk_files(path: Path, limit: int = _SCAN_LIMIT) -> Iterator[Path]:
    """Files under ``path`` (hidden ones skipped), in sorted order per folder, at most ``limit``."""
    seen = 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield Path(folder) / name
            seen += 1
            if seen >= limit:
                return


def _names(items: list[str], most: int = 6) -> str:
    shown = ", ".join(items[:most])
    return shown + (f", ... ({len(items)} in all)" if len(items) > most else "")


def class_folders(path: Path) -> list[str]:
    """Names of the sub-folders of ``path`` that directly hold images (a class-folder layout;
    split folders, whose images sit one level further down, are not counted)."""
    if not path.is_dir():
        return []
    out = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS for f in sub.iterdir()):
            out.append(sub.name)
    return out


def describe(path: Path) -> str:
    """What ``path`` holds, in a few words, for messages: the entries of a folder and its media
    counts, or the header of a file; for a missing path, what its parent folder holds."""
    path = Path(path)
    if not path.exists():
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        return f"{parent} holds {_entries(parent)}" if parent.is_dir() else f"{parent} does not exist"
    if path.is_file():
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
        return f"{path.name} starts with {first[:120]!r}" if first else f"{path.name} is empty"
    return f"{path} holds {_entries(path)}"


def _entries(folder: Path) -> str:
    children = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if not children:
        return "nothing"
    listed = _names([p.name + ("/" if p.is_dir() else "") for p in children])
    kinds = Counter(f.suffix.lower() or "no extension" for f in walk_files(folder))
    counts = ", ".join(f"{n} {ext}" for ext, n in kinds.most_common(4))
    classes = class_folders(folder)
    shape = f"; class folders of images: {_names(classes)}" if classes else ""
    return f"{listed} ({counts} files{shape})"


def conventional_split(root: Path, split: str, default: str) -> Path | None:
    """The one path under ``root`` named as ``split`` is conventionally named (``dev.tsv``,
    ``valid/``, ``validation.jsonl``...), or ``None`` when there is none or more than one."""
    suffix = Path(default).suffix
    found = {root / f"{name}{ext}" for name in SPLIT_NAMES[split] for ext in (suffix, *_SPLIT_SUFFIXES)}
    existing = sorted(p for p in found if p.exists())
    return existing[0] if len(existing) == 1 else None


def root_layout(root: Path, detect: Callable[[Path], str] | None) -> str | None:
    """The format ``detect`` (``format=auto``'s choice) reads ``root`` itself as, when it holds one
    source of data (a class folder, audio with transcripts, a Kaldi dir...); ``None`` otherwise."""
    if detect is None or not root.is_dir():
        return None
    try:
        name = detect(root)
    except DataError:
        return None
    if name == "image_folder" and not class_folders(root):
        return None
    return name


def resolve_splits(cfg: Any, root: Path, defaults: Mapping[str, Any] | None) -> Any:
    """The ``data:`` config with split paths left at the modality's defaults fitted to ``root``.

    Called by :func:`~framework.data.load_bundle` before reading. A split whose path is its
    default (``defaults[split]``) and does not exist is looked for under its conventional names
    (``dev.tsv`` or ``valid/`` for ``val``; logged), else ``val``/``test`` are skipped with a
    warning naming ``data.<split>=null``. A path the user changed is left as it is, so that a
    missing one is an error (:func:`missing_split_error`).

    Returns:
        ``cfg`` itself when nothing changed, else a copy (dataclass or OmegaConf node).
    """
    if not defaults:
        return cfg
    changes: dict[str, str | None] = {}
    for split in SPLITS:
        if split != "train" and "train" not in changes and _absent(cfg.train, root):
            break  # the missing train split is the error to report; no warnings before it
        rel = getattr(cfg, split, None)
        if not isinstance(rel, str) or not rel or rel != defaults.get(split):
            continue
        if not _absent(rel, root):
            continue
        found = conventional_split(root, split, rel)
        if found is not None:
            changes[split] = found.relative_to(root).as_posix()
            log.info("data.%s: %s not found; reading %s, the %s split of this layout (set data.%s=PATH to choose)",
                     split, rel, changes[split], split, split)
        elif split != "train":
            changes[split] = None
            log.warning("data.%s: no %s in %s, so the run has no %s split (set data.%s=PATH to use one, or "
                        "data.%s=null to silence this)", split, rel, root, split, split, split)
    if not changes:
        return cfg
    if dataclasses.is_dataclass(cfg):
        return dataclasses.replace(cfg, **changes)
    copy = cfg.copy()
    for key, value in changes.items():
        setattr(copy, key, value)
    return copy


def _absent(rel: Any, root: Path) -> bool:
    if not isinstance(rel, str) or not rel:
        return False
    path = Path(rel).expanduser()
    return not (path if path.is_absolute() else root / path).exists()


def missing_split_error(split: str, rel: str, path: Path, root: Path,
                        detect: Callable[[Path], str] | None = None) -> DataError:
    """The error for a configured split path that does not exist: what is there instead, and the
    override (or the split command) that fixes it. Called by the loader before reading; ``detect``
    (the registry's ``format=auto``) tells whether the root itself is one unsplit source."""
    where = f"data.{split}={rel}"
    found = describe(path)
    alternative = conventional_split(root, split, rel)
    hint = f"set data.{split}={alternative.relative_to(root).as_posix()}, " if alternative is not None else ""
    if split == "train" and not hint:
        layout = root_layout(root, detect)
        if layout is not None:
            return DataError(where, f"{path} not found; {found}: one {layout} source, not split into "
                             f"train/val/test",
                             f"Make splits with `{SPLIT_COMMAND}` (docs/data.md), or train on all of it with "
                             f"data.train=. stages=[audit,train].")
        return DataError(where, f"{path} not found; {found}",
                         "Point data.root at your data and data.train at its training folder or manifest "
                         "(docs/data.md lists the layouts read).")
    if split == "train":
        return DataError(where, f"{path} not found; {found}", f"Fix the path ({hint}relative to data.root).")
    return DataError(where, f"{path} not found; {found}",
                     f"Fix the path ({hint}relative to data.root), or set data.{split}=null to run without a "
                     f"{split} split.")


def not_a_layout(path: Path, expected: str, fix: str) -> DataError:
    """The error for a folder or file that is not the layout a reader expects: what was found,
    the layout expected, and ``fix``."""
    return DataError(str(path), f"{describe(path)}; expected {expected}", fix)

