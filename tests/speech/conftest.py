"""Fixtures of the speech plugin's tests (helpers live in ``speech_fixtures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from framework.modality import RunContext
from speech_fixtures import context, copy_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Eight train, three val and three test utterances of the bundled corpus."""
    return copy_corpus(tmp_path / "corpus", {"train": 8, "val": 3, "test": 3})


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """``speech_fixtures.context`` with the run dir defaulting to ``tmp_path / "run"``."""

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, run_dir: Path | None = None) -> RunContext:
        return context(root, run_dir or tmp_path / "run", modality, model, data)

    return build
