"""Fixtures of the vision plugin's tests (helpers live in ``vision_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from framework.modality import RunContext
from framework.testing import run_context
from plugins.vision.config import VisionConfig, VisionModelConfig
from vision_fixtures import CONF, TINY_VIT, write_folder


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """A tiny colour-coded image folder with train/val/test splits."""
    return write_folder(tmp_path / "images", {"train": 16, "val": 4, "test": 4})


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """Build a RunContext from the shipped vision YAML plus overrides, with the tiny ViT.

    Starting from the shipped YAML also checks that it binds to the schemas.
    """

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return run_context(CONF / "modality" / "vision.yaml", {"modality": VisionConfig, "model": VisionModelConfig},
                           run_dir or tmp_path / "run",
                           overrides={"modality": [modality or {}], "model": [TINY_VIT, model or {}],
                                      "data": [{"root": str(root), "train": "train", "val": "val", "test": "test"},
                                               data or {}]})

    return build
