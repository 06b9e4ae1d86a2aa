"""The text plugin's hook implementations (entry point ``text = "plugins.text.plugin"``)."""

from __future__ import annotations

from typing import Any

from framework import hookimpl

NAME = "text"


@hookimpl
def framework_modalities() -> list[Any]:
    """The text modality (SFT and DPO)."""
    from plugins.text.modality import TextModality

    return [TextModality()]


@hookimpl
def framework_config_search_path() -> list[str]:
    """``conf/modality/text.yaml``, ``conf/modality/text_dpo.yaml`` and the ``model=`` options."""
    return ["pkg://plugins.text.conf"]


@hookimpl
def framework_quality_checks(modality: str) -> list[Any]:
    """Loss-mask, truncation, turn, role-order, duplicate-prompt and preference-pair checks."""
    if modality != NAME:
        return []
    from plugins.text.checks import quality_checks

    return quality_checks()
