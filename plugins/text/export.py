"""Exporting a fine-tuned causal LM.

An export directory holds:

* ``adapter/``: the LoRA adapter (peft ``save_pretrained``: ``adapter_config.json`` and
  ``adapter_model.safetensors``), loadable onto the base model with ``PeftModel.from_pretrained``;
  absent after full fine-tuning;
* ``merged/``: the adapter merged into the base weights (``merge_and_unload``), saved as
  safetensors with the tokenizer and its chat template, loadable on its own with
  ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``; its
  ``tokenizer_config.json`` keeps no load-time option of the run (``local_files_only``,
  ``gguf_file``...), which would bind whoever loads the export;
* ``config.yaml``: the run's resolved config.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from plugins.text.model import clean_tokenizer_config, is_peft


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model with the LoRA updates folded into its weights (``model`` is
    left untouched); the model itself after full fine-tuning."""
    if not is_peft(model):
        return model
    return copy.deepcopy(model).merge_and_unload()


def export_model(model: nn.Module, tokenizer: Any, out_dir: Path, config_yaml: str, chat_template: str) -> list[Path]:
    """Write the export directory described in the module docstring; returns the written files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_peft(model):
        model.save_pretrained(out_dir / "adapter", safe_serialization=True)
    merged = merged_copy(model).cpu()
    merged.save_pretrained(out_dir / "merged", safe_serialization=True)
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = chat_template
    tok.save_pretrained(out_dir / "merged")
    clean_tokenizer_config(out_dir / "merged")
    (out_dir / "config.yaml").write_text(config_yaml, encoding="utf-8")
    return sorted(p for p in out_dir.rglob("*") if p.is_file())
