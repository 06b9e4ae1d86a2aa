"""Fixtures of the text plugin's tests: small chat and preference files, contexts, the tiny LM."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from omegaconf import OmegaConf

from framework.modality import RunContext
from framework.testing import run_context
from plugins.text.config import TextConfig, TextModelConfig
from text_fixtures import CONF, chat_line, pair_line, write_jsonl

@pytest.fixture
def chat_root(tmp_path: Path) -> Path:
    root = tmp_path / "chat"
    write_jsonl(root / "train.jsonl", [chat_line(i, n, system=i % 3 == 0) for i, n in enumerate(range(10, 42))])
    write_jsonl(root / "val.jsonl", [chat_line(100 + i, n) for i, n in enumerate(range(50, 56))])
    (root / "datacard.yaml").write_text("sources: [unit-conversion chats written by tests/text/conftest.py]\n")
    return root


@pytest.fixture
def pair_root(tmp_path: Path) -> Path:
    root = tmp_path / "prefs"
    write_jsonl(root / "train.jsonl", [pair_line(i, n, i % 2 == 0) for i, n in enumerate(range(10, 34))])
    write_jsonl(root / "val.jsonl", [pair_line(100 + i, n, i % 2 == 0) for i, n in enumerate(range(50, 56))])
    (root / "datacard.yaml").write_text("sources: [preference pairs written by tests/text/conftest.py]\n")
    return root


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    """A RunContext from the shipped text YAML and tiny model plus overrides (binding them to the schemas)."""

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              run_dir: Path | None = None) -> RunContext:
        dpo = (modality or {}).get("method") == "dpo"
        data = {"root": str(root), "test": None, "format": "preference" if dpo else "chat",
                "slices": ["kind"] if dpo else ["unit"]}
        return run_context(CONF / "modality" / "text.yaml", {"modality": TextConfig, "model": TextModelConfig},
                           run_dir or tmp_path / "run",
                           overrides={"modality": [{"probes": {"file": None, "hallucination": {"files": []}},
                                                    "baseline": False}, modality or {}],
                                      "model": [OmegaConf.load(CONF / "model" / "tiny.yaml"), model or {}],
                                      "data": [data]})

    return build
