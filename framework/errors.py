"""Errors the framework reports to users as a message, not a traceback."""

from __future__ import annotations


class FrameworkError(Exception):
    """A problem the user can fix (config, data, plugins). The message says what and how.

    ``python -m framework`` prints the message alone and exits with status 2.
    """
