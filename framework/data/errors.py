"""Errors raised while reading data: each names the place (``file:line``), the problem and the fix."""

from __future__ import annotations

from framework.errors import FrameworkError


class DataError(FrameworkError, ValueError):
    """A manifest or export that cannot be read as it is.

    The message always says where (``path:line`` when there is a line), what is wrong, and what
    to do. Unlike a missing media file (which is quarantined), a malformed line stops loading,
    because it usually means the whole file was written by the wrong tool.
    """

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(f"{where}: {problem}. {fix}")
