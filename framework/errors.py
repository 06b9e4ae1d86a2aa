"""Errors the framework reports to users as a message, not a traceback."""

from __future__ import annotations


class FrameworkError(Exception):
    """A problem the user can fix (config, data, plugins). The message says what and how.

    ``python -m framework`` prints the message alone and exits with status 2.
    """


def first_line(err: BaseException, default: str = "") -> str:
    """The first line of ``err``'s message (for one-line reports), or ``default`` when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else default
