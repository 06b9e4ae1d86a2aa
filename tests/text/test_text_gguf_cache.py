"""A GGUF file is dequantised once into the framework's cache; later loads read the cached directory.

The dequantising itself (transformers' GGUF support) is stood in for by the bundled tiny model, so
these tests need no released weights (``tests/real`` runs the real file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import transformers

from plugins.text import model as text_model
from plugins.text.config import TextModelConfig
from text_fixtures import TINY


@pytest.fixture
def gguf_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """GGUF loads go to the tiny model and are recorded; the cache lives under ``tmp_path``."""
    monkeypatch.setenv("FRAMEWORK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text_model, "_require_gguf", lambda name: None)
    calls: list[str] = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__  # type: ignore[attr-defined]

        def load(klass: Any, source: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if kwargs.pop("gguf_file", None) is not None:
                calls.append(klass.__name__)
                source = str(TINY)
            return _original(klass, source, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(load))
    return calls


def test_a_gguf_file_is_dequantised_once_and_loaded_from_the_cache(gguf_loads: list[str], tmp_path: Path) -> None:
    gguf = tmp_path / "weights" / "Tiny.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF stand-in")
    first = text_model.dequantised_gguf(str(gguf))
    assert first.parent == tmp_path / "cache" / "gguf" and first.name.startswith("Tiny.Q4_1-")
    assert sorted(gguf_loads) == ["AutoModelForCausalLM", "AutoTokenizer"]
    record = json.loads((first / text_model.GGUF_CACHE_RECORD).read_text())
    assert record["gguf_file"] == str(gguf) and record["size"] == gguf.stat().st_size
    assert "gguf_file" not in json.loads((first / "tokenizer_config.json").read_text())
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary left

    cfg = TextModelConfig(name=str(gguf), dtype="float32")
    cfg.lora.rank = 0
    model, tok = text_model.load_model(cfg), text_model.load_tokenizer(cfg)
    assert len(gguf_loads) == 2  # read from the cache: no second dequantising
    assert type(model).__name__ == "LlamaForCausalLM" and tok.pad_token is not None

    os.utime(gguf, ns=(1, 1))  # a changed file is a different cache entry
    assert text_model.gguf_cache_dir(str(gguf)) != first
    assert text_model.dequantised_gguf(str(gguf)) != first and len(gguf_loads) == 4


def test_a_missing_gguf_file_says_so(gguf_loads: list[str], tmp_path: Path) -> None:
    with pytest.raises(text_model.FrameworkError, match="no such GGUF file"):
        text_model.dequantised_gguf(str(tmp_path / "absent.gguf"))
    assert not gguf_loads
