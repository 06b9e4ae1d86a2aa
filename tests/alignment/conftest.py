"""Fixtures of the alignment plugin's tests (helpers live in ``alignment_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from omegaconf import OmegaConf

from alignment_fixtures import CONF, TINY_MODEL
from framework.data.config import DataConfig
from framework.modality import RunContext
from plugins.alignment.config import AlignmentConfig, AlignmentModelConfig


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """A RunContext from the shipped alignment YAML plus overrides, with the tiny towers.

    Starting from the shipped YAML also checks that it binds to the schemas.
    """

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        shipped = OmegaConf.load(CONF / "modality" / "alignment.yaml")
        mod = OmegaConf.merge(OmegaConf.structured(AlignmentConfig), shipped.modality, modality or {})
        mdl = OmegaConf.merge(OmegaConf.structured(AlignmentModelConfig), TINY_MODEL, model or {})
        dat = OmegaConf.merge(OmegaConf.structured(DataConfig), shipped.data, {"root": str(root)}, data or {})
        run = run_dir or tmp_path / "run"
        run.mkdir(parents=True, exist_ok=True)
        return RunContext(run_dir=run, modality=OmegaConf.to_object(mod), model=OmegaConf.to_object(mdl),
                          data=OmegaConf.to_object(dat), seed=0, plugins=None, config_yaml="seed: 0\n")

    return build
