"""Old module paths kept importable for one release after a module is renamed.

A shim module at the old path calls :func:`alias_module` as its only statement: importing the old
path then warns once with a :class:`DeprecationWarning` naming the new path, and gives the new
module itself (the same object, every name in it, private ones included).
"""

from __future__ import annotations

import sys
import warnings
from importlib import import_module


def alias_module(old: str, new: str) -> None:
    """Make ``old`` (the shim's ``__name__``) an alias of module ``new``, with a deprecation warning.

    Called once, from the body of the shim module at the old path, while it is being imported.
    """
    warnings.warn(f"{old} is deprecated and will be removed in the next release: import {new} instead "
                  "(docs/plugins.md, Migrating)", DeprecationWarning, stacklevel=3)
    sys.modules[old] = import_module(new)
