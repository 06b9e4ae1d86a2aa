"""Fixtures of the alignment plugin's tests (helpers live in ``alignment_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from alignment_fixtures import context
from framework.modality import RunContext


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """``alignment_fixtures.context`` with the run dir defaulting to ``tmp_path / "run"``."""

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return context(root, run_dir or tmp_path / "run", modality, model, data)

    return build
