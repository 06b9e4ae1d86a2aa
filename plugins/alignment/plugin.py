"""The alignment plugin's hook implementations (entry point ``alignment = "plugins.alignment.plugin"``)."""

from __future__ import annotations

from typing import Any

from framework import hookimpl

NAME = "alignment"


@hookimpl
def framework_modalities() -> list[Any]:
    """The alignment modality."""
    from plugins.alignment.modality import AlignmentModality

    return [AlignmentModality()]


@hookimpl
def framework_config_search_path() -> list[str]:
    """``conf/modality/alignment.yaml`` and the ``model=dual_tiny|dual_clip`` group."""
    return ["pkg://plugins.alignment.conf"]


@hookimpl
def framework_quality_checks(modality: str) -> list[Any]:
    """The misalignment audit (scores pairs with the trained model), for alignment runs only."""
    if modality != NAME:
        return []
    from plugins.alignment.misalignment import MisalignmentCheck

    return [MisalignmentCheck()]
