"""Fixtures of the vision plugin's tests (helpers live in ``vision_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from omegaconf import OmegaConf

from framework.data.config import DataConfig
from framework.modality import RunContext
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
        shipped = OmegaConf.load(CONF / "modality" / "vision.yaml")
        mod = OmegaConf.merge(OmegaConf.structured(VisionConfig), shipped.modality, modality or {})
        mdl = OmegaConf.merge(OmegaConf.structured(VisionModelConfig), TINY_VIT, model or {})
        dat = OmegaConf.merge(OmegaConf.structured(DataConfig), shipped.data,
                              {"root": str(root), "train": "train", "val": "val", "test": "test"}, data or {})
        run = run_dir or tmp_path / "run"
        run.mkdir(parents=True, exist_ok=True)
        return RunContext(run_dir=run, modality=OmegaConf.to_object(mod), model=OmegaConf.to_object(mdl),
                          data=OmegaConf.to_object(dat), seed=0, plugins=None, config_yaml="seed: 0\n")

    return build
