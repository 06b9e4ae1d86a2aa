"""Fixtures of the alignment plugin's tests (helpers live in ``alignment_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from alignment_fixtures import CONF, TINY_MODEL
from framework.modality import RunContext
from framework.testing import run_context
from plugins.alignment.config import AlignmentConfig, AlignmentModelConfig


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """A RunContext from the shipped alignment YAML plus overrides, with the tiny towers.

    Starting from the shipped YAML also checks that it binds to the schemas.
    """

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return run_context(CONF / "modality" / "alignment.yaml",
                           {"modality": AlignmentConfig, "model": AlignmentModelConfig}, run_dir or tmp_path / "run",
                           overrides={"modality": [modality or {}], "model": [TINY_MODEL, model or {}],
                                      "data": [{"root": str(root)}, data or {}]})

    return build
