"""One run, one directory, one process: start-up checks of a run dir and the lock held on it.

A run holds ``run_dir/.lock`` (an OS file lock, via ``filelock``) for its whole life. A second
process pointed at a live run dir is refused at once with the owner's pid; the OS drops the lock
of a process that dies (``kill -9``, a crash), so the next run takes a stale lock over safely,
noting the pid that left it. ``run_dir/.lock.owner`` records who holds the lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError

log = logging.getLogger(__name__)

LOCK = ".lock"
OWNER = ".lock.owner"

_held: dict[Path, "RunDirLock"] = {}  # run dirs this process holds, so nested takers share one lock


def check_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` and make sure a run can write there: one-line errors, before any work.

    Raises:
        FrameworkError: The directory cannot be created or written, or ``checkpoints`` in it is not
            a directory.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FrameworkError(f"cannot create the run dir {run_dir}: {err.strerror or err}; "
                             "choose another with hydra.run.dir=PATH") from None
    if not run_dir.is_dir():
        raise FrameworkError(f"the run dir {run_dir} exists and is not a directory; "
                             "choose another with hydra.run.dir=PATH")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise FrameworkError(f"the run dir {run_dir} is not writable ({err.strerror or err}); fix its permissions "
                             "or choose another with hydra.run.dir=PATH") from None
    checkpoints = run_dir / "checkpoints"
    if checkpoints.exists() and not checkpoints.is_dir():
        raise FrameworkError(f"{checkpoints} exists and is not a directory: checkpoints cannot be written there; "
                             "move it away or choose another hydra.run.dir")


class RunDirLock:
    """The lock on one run dir; :meth:`acquire` refuses at once when another process holds it."""

    def __init__(self, run_dir: Path) -> None:
        from filelock import FileLock

        self.run_dir = Path(run_dir).resolve()
        self._lock = FileLock(self.run_dir / LOCK, timeout=0)
        self._depth = 0

    @property
    def owner_path(self) -> Path:
        """``run_dir/.lock.owner``: pid, host and start time of the holder."""
        return self.run_dir / OWNER

    def acquire(self) -> "RunDirLock":
        """Take the lock (re-entrant within this process).

        Raises:
            FrameworkError: Another live process holds it; the message names its pid and host.
        """
        from filelock import Timeout

        if self._depth:
            self._depth += 1
            return self
        try:
            self._lock.acquire()
        except Timeout:
            raise FrameworkError(
                f"the run dir {self.run_dir} is in use by another process ({_describe(self._owner())}): two "
                "processes in one run dir would mix their checkpoints and metrics. Wait for it to finish, "
                "or choose another hydra.run.dir"
            ) from None
        previous = self._owner()
        if previous:
            log.warning("run dir %s: taking over the lock left by %s, which stopped without releasing it",
                        self.run_dir, _describe(previous))
        from framework.atomic import atomic_write_json

        atomic_write_json(self.owner_path, {"pid": os.getpid(), "host": socket.gethostname(),
                                            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self._depth = 1
        _held[self.run_dir] = self
        return self

    def release(self) -> None:
        """Give the lock up (the outermost release removes the owner record)."""
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        _held.pop(self.run_dir, None)
        try:
            self.owner_path.unlink(missing_ok=True)
        finally:
            self._lock.release()

    def _owner(self) -> dict[str, Any]:
        try:
            return json.loads(self.owner_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_run_dir(run_dir: Path) -> RunDirLock:
    """The lock of ``run_dir``, acquired (shared with an enclosing holder in this process)."""
    held = _held.get(Path(run_dir).resolve())
    return (held or RunDirLock(run_dir)).acquire()


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "owner unknown"
    return f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('started')}"
