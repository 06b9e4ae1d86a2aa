"""Fixtures of the text plugin's tests: small chat and preference files, contexts, the tiny LM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from omegaconf import OmegaConf

from framework.data.config import DataConfig
from framework.modality import RunContext
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
    """A RunContext from the shipped text YAML plus overrides (binding the YAML to the schemas)."""

    def build(root: Path, modality: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
              run_dir: Path | None = None) -> RunContext:
        shipped = OmegaConf.load(CONF / "modality" / "text.yaml")
        mod = OmegaConf.merge(OmegaConf.structured(TextConfig), shipped.modality,
                              {"probes": {"file": None}, "baseline": False}, modality or {})
        mdl = OmegaConf.merge(OmegaConf.structured(TextModelConfig), OmegaConf.load(CONF / "model" / "tiny.yaml"),
                              model or {})
        fmt = "preference" if mod.method == "dpo" else "chat"
        dat = OmegaConf.merge(OmegaConf.structured(DataConfig),
                              {"root": str(root), "train": "train.jsonl", "val": "val.jsonl", "format": fmt,
                               "slices": ["unit"] if fmt == "chat" else ["kind"]})
        run = run_dir or tmp_path / "run"
        run.mkdir(parents=True, exist_ok=True)
        return RunContext(run_dir=run, modality=OmegaConf.to_object(mod), model=OmegaConf.to_object(mdl),
                          data=OmegaConf.to_object(dat), seed=0, plugins=None, config_yaml="seed: 0\n")

    return build
