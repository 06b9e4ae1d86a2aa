"""SIGTERM/SIGINT become a flag the engine reads at optimizer-step boundaries.

Reading a Python bool costs nothing, so the check can run every step. The engine saves a checkpoint
and raises :class:`~framework.training.Interrupted` once every rank has seen the flag.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Installs handlers for SIGTERM and SIGINT that set :attr:`requested`.

    While :attr:`saving` is true (a checkpoint is being written) further signals are only logged,
    so an impatient second Ctrl-C cannot leave a half-written checkpoint behind. Outside a save, a
    second SIGINT raises ``KeyboardInterrupt`` at once (the usual way to force-quit); the atomic
    checkpoint writes keep earlier checkpoints valid even then.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self.saving = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Install the handlers (main thread only; elsewhere this is a logged no-op)."""
        if self._previous:
            return
        if threading.current_thread() is not threading.main_thread():
            log.debug("Not in the main thread: SIGTERM/SIGINT will not stop training gracefully")
            return
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.saving:
            log.warning("%s received while a checkpoint is being written; finishing the write first", name)
            self.requested = True
            return
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        log.warning("%s received: stopping at the next step boundary after saving a checkpoint", name)
