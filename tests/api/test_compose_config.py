"""framework.compose_config and modality_sections: the config and typed sections a run would get."""

from __future__ import annotations

import pytest

from framework import FrameworkError, compose_config, modality_sections
from plugins.vision.config import VisionConfig, VisionModelConfig
from plugins.vision.modality import VisionModality


def test_sections_are_the_modality_dataclasses_with_the_overrides() -> None:
    cfg = compose_config(["+modality=vision", "modality.label_smoothing=0.2"])
    sections = modality_sections(cfg, VisionModality())
    assert isinstance(sections["modality"], VisionConfig) and isinstance(sections["model"], VisionModelConfig)
    assert sections["modality"].label_smoothing == 0.2


def test_a_key_the_dataclass_lacks_is_an_error_naming_it() -> None:
    cfg = compose_config(["+modality=vision", "+modality.label_smothing=0.2"])
    with pytest.raises(FrameworkError, match="label_smothing"):
        modality_sections(cfg, VisionModality())
