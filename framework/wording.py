"""Words in the text the framework writes for people (reports, log lines): counts with their nouns."""

from __future__ import annotations

import math


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 item``, ``2 items``, ``0 items``; ``plural_form`` for irregular nouns (``1 class``, ``2 classes``)."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


#: Names of figures that count items: shown as integers even when stored as floats (``support: 6.0``).
COUNT_NAMES = frozenset({"support", "count", "n", "items", "errors", "size"})


def number(value: float | int, name: str | None = None) -> str:
    """A figure as people read it in a report: one format for every number of a kind.

    Integers (and figures named like counts, :data:`COUNT_NAMES`) as integers; every other number
    to four decimals, whole or not (``1.0000`` beside ``0.9630``, never ``1``); NaN as ``nan``.
    """
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, int) or (name in COUNT_NAMES and float(value).is_integer()):
        return str(int(value))
    return f"{value:.4f}"
