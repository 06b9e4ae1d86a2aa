"""Plain JSON values from what runs produce (numpy numbers and arrays, paths, NaN, tuples).

:func:`jsonable` is called before every ``json.dumps`` of a run artifact (``audit.json``,
``eval/reports.json``, review files), so artifacts are strict JSON that any reader accepts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values, recursively.

    Mappings become dicts with string keys; lists, tuples and sets become lists; numpy arrays and
    scalars are unwrapped; a NaN or infinite float becomes ``None`` (strict JSON has neither);
    strings, ints, bools and ``None`` are kept; anything else (a ``Path``...) becomes ``str(value)``.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
