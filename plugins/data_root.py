"""Deprecated: renamed :mod:`plugins._bundled` (this path is removed in the next release)."""

import sys
import warnings

from plugins import _bundled

warnings.warn("plugins.data_root is deprecated and will be removed in the next release: import plugins._bundled "
              "instead (docs/plugins.md, Migrating)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _bundled
