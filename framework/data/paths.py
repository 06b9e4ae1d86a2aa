"""Resolving media paths from manifests against the data root, refusing escapes."""

from __future__ import annotations

import os
from pathlib import Path

from framework.data.errors import DataError


def resolve_media(raw: str, *, root: Path, base: Path, where: str, allow_outside_root: bool = False) -> Path:
    """Resolve a media path written in a manifest.

    Relative paths resolve against ``base`` (the manifest's folder) when the file exists there,
    else against ``root``. The result must stay inside ``root`` unless ``allow_outside_root``.

    Args:
        raw: The path as written in the manifest.
        root: The data root (``data.root``).
        base: The folder of the manifest that names the path.
        where: ``path:line`` of the manifest line, for the error message.
        allow_outside_root: Accept paths outside ``root`` (absolute paths, ``..``).

    Returns:
        The absolute, normalised path (the file itself may not exist; the caller quarantines).

    Raises:
        DataError: when the path is empty or escapes ``root`` (by ``..``, an absolute path or a
            symbolic link pointing outside) and that is not allowed.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(where, f"media path must be a non-empty string, got {raw!r}", "Fix the manifest line.")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        local = base / candidate
        candidate = local if local.exists() else root / candidate
    # The record keeps the path as written (normpath, not resolve()), so ids stay readable; the
    # check also follows symbolic links, since a link inside root may point anywhere.
    resolved = Path(os.path.normpath(os.path.abspath(candidate)))
    root_abs = Path(os.path.normpath(os.path.abspath(root)))
    if allow_outside_root:
        return resolved
    if not resolved.is_relative_to(root_abs):
        raise DataError(
            where,
            f"media path {raw!r} resolves to {resolved}, outside the data root {root_abs}",
            "Move the file under data.root, fix the path, or set data.allow_outside_root=true.",
        )
    target, real_root = Path(os.path.realpath(resolved)), Path(os.path.realpath(root_abs))
    if not target.is_relative_to(real_root):
        raise DataError(
            where,
            f"media path {raw!r} is a symbolic link to {target}, outside the data root {real_root}",
            "Copy the file under data.root, or set data.allow_outside_root=true.",
        )
    return resolved


def relative_id(path: Path, root: Path) -> str:
    """The path relative to ``root`` in POSIX form (a stable record id), or the absolute path."""
    root_abs = Path(os.path.normpath(os.path.abspath(root)))
    try:
        return path.relative_to(root_abs).as_posix()
    except ValueError:
        return path.as_posix()


def data_file(raw: str, *, root: Path, where: str, allow_outside_root: bool = False) -> Path:
    """A file the config names under ``data:`` (a split's manifest, ``annotations``, ``gold``,
    ``pred_probs``), resolved against ``root``; called by the loader before reading it.

    A relative path, or an absolute one inside ``root``, may not be a symbolic link (or pass through
    one) that leads outside ``root`` unless ``allow_outside_root``: a data dir someone else prepared
    cannot make the run read ``~/.ssh/id_rsa`` as a manifest. An absolute path outside ``root`` is
    the config's own choice and is kept.

    Raises:
        DataError: naming ``where`` (the config key) and the link's target.
    """
    path = Path(str(raw)).expanduser()
    path = path if path.is_absolute() else root / path
    lexical = Path(os.path.normpath(os.path.abspath(path)))
    root_abs = Path(os.path.normpath(os.path.abspath(root)))
    if allow_outside_root or not lexical.is_relative_to(root_abs):
        return path
    target, real_root = Path(os.path.realpath(lexical)), Path(os.path.realpath(root_abs))
    if not target.is_relative_to(real_root):
        raise DataError(where, f"{raw!r} is a symbolic link to {target}, outside the data root {real_root}",
                        "Copy the file under data.root, or set data.allow_outside_root=true.")
    return path
