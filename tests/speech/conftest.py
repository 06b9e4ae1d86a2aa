"""Fixtures of the speech plugin's tests (helpers live in ``speech_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from framework.modality import RunContext
from framework.testing import run_context
from plugins.speech.config import SpeechConfig, SpeechModelConfig
from speech_fixtures import CONF, TINY_MODEL, copy_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Eight train, three val and three test utterances of the bundled corpus."""
    return copy_corpus(tmp_path / "corpus", {"train": 8, "val": 3, "test": 3})


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """A RunContext from the shipped speech YAML plus overrides, with the tiny Whisper dims.

    Starting from the shipped YAML also checks that it binds to the schemas.
    """

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return run_context(CONF / "modality" / "speech.yaml", {"modality": SpeechConfig, "model": SpeechModelConfig},
                           run_dir or tmp_path / "run",
                           overrides={"modality": [{"robustness_snr_db": [10.0], "sample_len": 12}, modality or {}],
                                      "model": [TINY_MODEL, model or {}], "data": [{"root": str(root)}, data or {}]})

    return build
