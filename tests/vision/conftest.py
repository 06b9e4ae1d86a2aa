"""Fixtures of the vision plugin's tests (helpers live in ``vision_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from framework.modality import RunContext
from vision_fixtures import context, write_folder


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """A tiny colour-coded image folder with train/val/test splits."""
    return write_folder(tmp_path / "images", {"train": 16, "val": 4, "test": 4})


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """``vision_fixtures.context`` with the run dir defaulting to ``tmp_path / "run"``."""

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return context(root, run_dir or tmp_path / "run", modality, model, data)

    return build
