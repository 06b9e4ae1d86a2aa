"""Flattening a nested config into dotted keys: shared by resume checks, run comparison and trackers.

A neutral module, so that the training engine and the trackers do not import each other for it.
"""

from __future__ import annotations

from typing import Any, Mapping


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """``{"trainer": {"lr": 0.1}}`` -> ``{"trainer.lr": "0.1"}``; lists become their text form.

    Returns:
        One entry per leaf, keyed by its dotted path, valued by ``str(leaf)``; a bare scalar with no
        ``prefix`` gives ``{}``.
    """
    if isinstance(tree, Mapping):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(tree)} if prefix else {}
