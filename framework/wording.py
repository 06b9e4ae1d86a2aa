"""Words in the text the framework writes for people (reports, log lines): counts with their nouns."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 item``, ``2 items``, ``0 items``; ``plural_form`` for irregular nouns (``1 class``, ``2 classes``)."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"
