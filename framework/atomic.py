"""Atomic writes for run artifacts: a reader sees the old file or the new one, never half of one.

Every file a run leaves behind (``summary.json``, ``report.md``, ``metrics.jsonl`` rewrites, the
export directory, checkpoints) is written to a temporary name beside its target, fsynced, and
renamed into place. A full disk or a crash mid-write leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: Path, data: Any) -> Path:
    """``json.dumps(data, indent=2)`` written with :func:`atomic_write_text`."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str))


def replace_dir(tmp: Path, final: Path) -> Path:
    """Publish the finished directory ``tmp`` as ``final``, replacing an existing one."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        stale = final.with_name(f".old-{final.name}-{os.getpid()}")
        shutil.rmtree(stale, ignore_errors=True)
        os.rename(final, stale)
        os.rename(tmp, final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.rename(tmp, final)
    return final


def no_space_left(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is "no space left on device" (or a full quota)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left on device" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False

