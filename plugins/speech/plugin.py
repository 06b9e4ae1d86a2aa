"""The speech plugin's hook implementations (entry point ``speech = "plugins.speech.plugin"``)."""

from __future__ import annotations

from typing import Any

from framework import hookimpl

NAME = "speech"


@hookimpl
def framework_modalities() -> list[Any]:
    """The speech modality."""
    from plugins.speech.modality import SpeechModality

    return [SpeechModality()]


@hookimpl
def framework_config_search_path() -> list[str]:
    """``conf/modality/speech.yaml`` and the ``model=whisper_tiny_scratch|whisper|whisper_base`` group."""
    return ["pkg://plugins.speech.conf"]


@hookimpl
def framework_quality_checks(modality: str) -> list[Any]:
    """Audio format, level, duration, transcript and language-tag checks, for speech runs only."""
    if modality != NAME:
        return []
    from plugins.speech.checks import quality_checks

    return quality_checks()
