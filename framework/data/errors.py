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


class DataErrors(DataError):
    """Several bad lines of one file, reported together so they can all be fixed in one pass.

    Attributes:
        errors: The first bad lines (each a :class:`DataError` naming ``file:line``).
        total: How many lines were bad in all (more than ``len(errors)`` when capped).
    """

    def __init__(self, where: str, errors: list[DataError], total: int) -> None:
        self.errors = list(errors)
        self.total = total
        more = total - len(self.errors)
        lines = [f"{where}: {total} bad lines; fix each and rerun:"]
        lines += [f"  {e}" for e in self.errors]
        if more:
            lines.append(f"  ... and {more} more bad lines (the first {len(self.errors)} are listed)")
        self.where, self.problem, self.fix = where, f"{total} bad lines", "fix each and rerun"
        Exception.__init__(self, "\n".join(lines))
