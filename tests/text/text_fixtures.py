"""Paths shared by the text tests (importable, unlike conftest)."""

from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "examples" / "models" / "tiny-unit-lm"
