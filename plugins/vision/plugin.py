"""The vision plugin's hook implementations (entry point ``vision = "plugins.vision.plugin"``)."""

from __future__ import annotations

from typing import Any

from framework import hookimpl

NAME = "vision"


@hookimpl
def framework_modalities() -> list[Any]:
    """The vision modality."""
    from plugins.vision.modality import VisionModality

    return [VisionModality()]


@hookimpl
def framework_config_search_path() -> list[str]:
    """``conf/modality/vision.yaml`` and the ``model=vit|efficientnet`` group."""
    return ["pkg://plugins.vision.conf"]


@hookimpl
def framework_quality_checks(modality: str) -> list[Any]:
    """Colour-mode mixes and resolution/aspect outliers, for vision runs only."""
    if modality != NAME:
        return []
    from plugins.vision.checks import quality_checks

    return quality_checks()
