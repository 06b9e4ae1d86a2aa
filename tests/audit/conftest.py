"""Tests of the audit, the annotation tools and the plugin-author surface reuse the data fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
